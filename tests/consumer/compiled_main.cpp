// The compiled-mode consumer (cct::compiled): the checks every consumer program makes (checks.hpp), and
// the README's quick start. It must be compiled with CCT_COMPILED (the target says so) and link: the
// model, its ops, AdamW and the checkpoint functions are declared extern here, so the linker finds them
// in libcct_compiled.a or nowhere.
#ifndef CCT_COMPILED
#error "cct::compiled must compile its users with CCT_COMPILED"
#endif
#include "checks.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

int main() {
  const bool gradients_ok = consumer::gradients_correct();
  const bool images_ok = consumer::png_round_trip("cct_consumer_compiled");

  auto model = cct::models::create("cct_2_3x2_32", {/*num_classes=*/10});
  model->train();
  cct::Generator gen(0);
  auto images = cct::Tensor<float>::randn({4, 3, 32, 32}, gen);
  auto labels = cct::Tensor<int64_t>::from_vector({0, 1, 2, 3});
  cct::optim::AdamW<float> optimizer(model->named_parameters(), {/*lr=*/5e-4});
  auto loss = cct::cross_entropy(model->forward(images), labels);
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();

  const std::string path = (std::filesystem::temp_directory_path() / "cct_consumer_compiled.safetensors").string();
  cct::models::save_model(path, *model);
  auto restored = cct::models::load_model(path);
  std::filesystem::remove(path);

  // The reloaded model gives the same logits, bit for bit, in evaluation mode.
  model->eval();
  restored->eval();
  cct::NoGradGuard no_grad;
  const auto a = model->forward(images).to_vector();
  const auto b = restored->forward(images).to_vector();
  const bool finite = std::isfinite(loss.item());
  const bool same = a == b;
  std::printf("compiled mode: loss %.4f, %lld parameters, reloaded logits %s\n", loss.item(),
              static_cast<long long>(model->num_parameters()), same ? "identical" : "DIFFERENT");
  return gradients_ok && images_ok && finite && same && model->num_parameters() == 283723 ? 0 : 1;
}
