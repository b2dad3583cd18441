// End to end: the pieces compose into models that learn.
#include <cmath>

#include <cct/models/registry.hpp>
#include <cct/nn/linear.hpp>
#include <cct/ops/activation.hpp>
#include <cct/ops/loss.hpp>
#include <cct/optim/adamw.hpp>

#include "test_helpers.hpp"

using cct::Tensor;

TEST_CASE("a two-layer MLP trained with plain SGD fits a toy problem", "[training]") {
  // Two Gaussian blobs per class arranged as XOR: not linearly separable.
  cct::Generator gen(11);
  const int64_t n = 256;
  Tensor<float> points = Tensor<float>::empty({n, 2});
  Tensor<int64_t> labels = Tensor<int64_t>::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    const int quadrant = static_cast<int>(i % 4);
    const float sx = quadrant & 1 ? 1.f : -1.f, sy = quadrant & 2 ? 1.f : -1.f;
    points(i, 0) = sx + 0.3f * static_cast<float>(gen.normal());
    points(i, 1) = sy + 0.3f * static_cast<float>(gen.normal());
    labels(i) = (sx * sy > 0) ? 1 : 0;
  }
  cct::nn::Linear<float> hidden(2, 16, true, gen), output(16, 2, true, gen);
  cct::nn::init::uniform_(hidden.weight, -0.7, 0.7, gen);
  cct::nn::init::uniform_(output.weight, -0.25, 0.25, gen);
  const std::vector<Tensor<float>> params = {hidden.weight, hidden.bias, output.weight, output.bias};

  float first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor<float> loss = cct::cross_entropy(output(cct::relu(hidden(points))), labels);
    for (const auto& p : params) p.zero_grad();
    loss.backward();
    cct::NoGradGuard no_grad;
    for (const auto& p : params)
      for (int64_t i = 0; i < p.numel(); ++i) p.data()[i] -= 0.5f * p.grad().data()[i];
    (step == 0 ? first : last) = loss.item();
  }
  CAPTURE(first, last);
  CHECK(first > 0.6f);   // chance level is ln 2 ≈ 0.69
  CHECK(last < 0.1f);
}

TEST_CASE("a small CCT overfits a fixed batch of 32 images", "[training][models]") {
  cct::models::ModelConfig config = cct::models::cct_config(2, 3, 2, /*image_size=*/16, /*num_classes=*/10);
  config.embedding_dim = 64;
  config.seed = 1;
  auto model = cct::models::create(config);
  model->train();
  cct::Generator gen(5);
  Tensor<float> images = Tensor<float>::randn({32, 3, 16, 16}, gen);
  Tensor<int64_t> labels = Tensor<int64_t>::empty({32});
  for (int64_t i = 0; i < 32; ++i) labels(i) = gen.randint(10);

  cct::optim::AdamW<float> optimizer(model->named_parameters(), {/*lr=*/2e-3, 0.9, 0.999, 1e-8, /*wd=*/0.0});
  float first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    Tensor<float> loss = cct::cross_entropy(model->forward(images), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item();
  }
  model->eval();
  cct::NoGradGuard no_grad;
  const float eval_loss = cct::cross_entropy(model->forward(images), labels).item();
  CAPTURE(first, last, eval_loss);
  CHECK(first > 1.8f);       // about ln 10 at the start
  CHECK(eval_loss < 0.05f);  // memorised
}
