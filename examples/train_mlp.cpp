// train_mlp: a two-layer network learns the classic two-spirals problem with autograd and plain SGD.
// The smallest end-to-end use of cct: data as tensors, modules, a loss, backward(), an optimiser step.
//   ./train_mlp [steps] [hidden]
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <cct/cct.hpp>

using cct::Tensor;

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int hidden = argc > 2 ? std::atoi(argv[2]) : 64;
  if (steps <= 0 || hidden <= 0) {
    std::fprintf(stderr, "usage: train_mlp [steps > 0] [hidden > 0]\n");
    return 2;
  }

  // Two interleaved spirals, 200 points each: not separable by a line, easy for a hidden layer.
  const int64_t per_class = 200, n = 2 * per_class;
  cct::Generator gen(7);
  Tensor<float> points = Tensor<float>::empty({n, 2});
  Tensor<int64_t> labels = Tensor<int64_t>::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t cls = i / per_class;
    const double t = 0.25 + 2.25 * static_cast<double>(i % per_class) / per_class;  // 1.25 turns
    const double radius = t / 2.5, angle = t * M_PI + cls * M_PI;
    points(i, 0) = static_cast<float>(radius * std::cos(angle) + 0.02 * gen.normal());
    points(i, 1) = static_cast<float>(radius * std::sin(angle) + 0.02 * gen.normal());
    labels(i) = cls;
  }

  cct::nn::Linear<float> layer1(2, hidden, true, gen), layer2(hidden, 2, true, gen);
  // The models' 0.02 init is too timid for a 2-input net; start from PyTorch's default scale instead.
  cct::nn::init::uniform_(layer1.weight, -1.0 / std::sqrt(2.0), 1.0 / std::sqrt(2.0), gen);
  cct::nn::init::uniform_(layer2.weight, -1.0 / std::sqrt(hidden), 1.0 / std::sqrt(hidden), gen);
  cct::optim::SGD<float> optimizer({{"layer1.weight", layer1.weight}, {"layer1.bias", layer1.bias},
                                    {"layer2.weight", layer2.weight}, {"layer2.bias", layer2.bias}},
                                   {/*lr=*/0.1, /*momentum=*/0.9});
  std::printf("two spirals: %lld points, hidden %d, SGD lr 0.1 momentum 0.9, %d steps\n", static_cast<long long>(n),
              hidden, steps);
  float loss_value = 0;
  for (int step = 1; step <= steps; ++step) {
    Tensor<float> logits = layer2(cct::tanh(layer1(points)));
    Tensor<float> loss = cct::cross_entropy(logits, labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    loss_value = loss.item();
    if (step == 1 || step % (steps / 10 > 0 ? steps / 10 : 1) == 0) {
      int64_t correct = 0;
      for (int64_t i = 0; i < n; ++i) correct += (logits(i, 1) > logits(i, 0)) == (labels(i) == 1);
      std::printf("step %5d  loss %.4f  accuracy %5.1f%%\n", step, loss_value, 100.0 * correct / n);
    }
  }
  return std::isfinite(loss_value) ? 0 : 1;
}
