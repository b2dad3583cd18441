// The README's quick start: build a registered model, run forward and backward on a batch, take one
// optimiser step, and save a checkpoint that PyTorch can read under the reference tensor names.
#include <cct/library.hpp>  // the core library: no data readers, no training layer
#include <cstdio>

int main() {
  auto model = cct::models::create("cct_2_3x2_32", {/*num_classes=*/10});
  model->train();

  cct::Generator gen(0);
  auto images = cct::Tensor<float>::randn({8, 3, 32, 32}, gen);        // (B, C, H, W)
  auto labels = cct::Tensor<int64_t>::from_vector({0, 1, 2, 3, 4, 5, 6, 7});

  cct::optim::AdamW<float> optimizer(model->named_parameters(), {/*lr=*/5e-4});
  auto loss = cct::cross_entropy(model->forward(images), labels, /*label_smoothing=*/0.1);
  optimizer.zero_grad();
  loss.backward();                                                      // gradients of every parameter
  optimizer.step();
  std::printf("loss %.4f, %lld parameters\n", loss.item(), static_cast<long long>(model->num_parameters()));

  cct::models::save_model("cct_2_3x2_32.safetensors", *model);          // atomic; names as in PyTorch
  auto restored = cct::models::load_model("cct_2_3x2_32.safetensors");  // rebuilt from the stored config
  std::printf("reloaded %s\n", restored->config().name.c_str());
}
