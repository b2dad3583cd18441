// What every consumer program checks, in either of cct's modes: one gradient by hand, and a PNG written
// and read back, which links stb's code from cct::cct (the compiled cct::image_codecs). It includes what
// it uses, as the README advises (the core library and the image data headers: 6 s to compile at -g
// instead of 10 s for the umbrella <cct/cct.hpp>, which the examples include and the header checks
// compile alone).
#pragma once

#include <cct/image_data.hpp>
#include <cct/library.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace consumer {

// y = a·b + a, so ∂y/∂a = b + 1 and ∂y/∂b = a.
inline bool gradients_correct() {
  auto a = cct::Tensor<float>::from_vector({1.0f, -2.0f, 3.0f});
  auto b = cct::Tensor<float>::from_vector({0.5f, 4.0f, -1.5f});
  a.requires_grad_();
  b.requires_grad_();
  auto y = a * b + a;
  y.backward(cct::Tensor<float>::ones(y.shape()));

  const std::vector<float> expected_y{1.5f, -10.0f, -1.5f};
  const std::vector<float> expected_grad_a{1.5f, 5.0f, -0.5f};
  const std::vector<float> expected_grad_b{1.0f, -2.0f, 3.0f};
  auto close = [](const std::vector<float>& actual, const std::vector<float>& expected) {
    if (actual.size() != expected.size()) return false;
    for (size_t i = 0; i < actual.size(); ++i)
      if (std::fabs(actual[i] - expected[i]) > 1e-6f) return false;
    return true;
  };
  auto print = [](const char* name, const std::vector<float>& values) {
    std::printf("%s =", name);
    for (float v : values) std::printf(" %g", v);
    std::printf("\n");
  };
  const bool ok = close(y.to_vector(), expected_y) && a.grad().defined() && b.grad().defined() &&
                  close(a.grad().to_vector(), expected_grad_a) && close(b.grad().to_vector(), expected_grad_b);
  print("y", y.to_vector());
  if (a.grad().defined()) print("dy/da", a.grad().to_vector());
  if (b.grad().defined()) print("dy/db", b.grad().to_vector());
  std::printf("cct %s consumer: %s\n", CCT_VERSION_STRING, ok ? "gradients correct" : "WRONG RESULT");
  return ok;
}

// A 3x2 RGB image through write_png and read_image: the pixels must come back unchanged. `program`
// names the temporary file, so the consumer tests can run side by side.
inline bool png_round_trip(const std::string& program) {
  cct::data::Image image(3, 2, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(17 * i);
  const std::string path = (std::filesystem::temp_directory_path() / (program + "_round_trip.png")).string();
  cct::data::write_png(path, image);
  const cct::data::Image back = cct::data::read_image(path);
  std::filesystem::remove(path);
  const bool same = back.channels == 3 && back.height == 2 && back.width == 3 && back.pixels == image.pixels;
  std::printf("PNG round trip through stb: %s\n", same ? "pixels unchanged" : "WRONG PIXELS");
  return same;
}

}  // namespace consumer
