// Checks of cct/distributed under a real `mpirun -np 2` (tests/mpi/mpirun.sh starts it; ctest label
// "mpi"). One program, one mode per ctest test:
//   sampler      every rank's share of an epoch: disjoint, together complete, the same step count
//   gradients    the fused average against a hand computation (and an unused parameter on one rank)
//   broadcast    ranks initialised differently hold rank 0's weights afterwards
//   equivalence  2 ranks x batch B/2 give the weights of 1 process x batch B after several AdamW steps
//   evaluation   a split evaluated in shards and summed equals one process evaluating all of it
//   fail         rank 1 throws: the job must end at once with an error naming rank 1 (no hang)
// Each rank checks; a failed check prints "FAILED (rank r of n): ..." and aborts the job.
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <cct/data/dataset.hpp>
#include <cct/data/shard.hpp>
#include <cct/distributed/gradients.hpp>
#include <cct/distributed/mpi_world.hpp>
#include <cct/models/registry.hpp>
#include <cct/nn/linear.hpp>
#include <cct/ops/loss.hpp>
#include <cct/optim/adamw.hpp>
#include <cct/train/evaluate.hpp>

using namespace cct;
using distributed::MpiWorld;

namespace {

struct CheckFailed : Error {
  using Error::Error;
};

void expect(bool condition, const std::string& what) {
  if (!condition) throw CheckFailed(what);
}

void check_sampler(MpiWorld& world) {
  for (const int64_t total : {10, 11, 1, 50000}) {
    Generator gen(7);
    const std::vector<int64_t> order = data::random_permutation(total, gen);
    const data::Shard shard{world.rank(), world.size(), /*pad=*/true};
    const std::vector<int64_t> share = data::shard_order(order, shard);
    expect(static_cast<int64_t>(share.size()) == data::shard_size(total, shard), "share size");
    // The same number of samples (so of steps) on every rank.
    const int64_t sizes = world.sum(static_cast<int64_t>(share.size()));
    expect(sizes == static_cast<int64_t>(share.size()) * world.size(),
           "ranks got different counts of " + std::to_string(total) + " samples");
    // Complete: every sample somewhere; disjoint: only the padding repeats, and only as much as needed.
    std::vector<int64_t> seen(static_cast<size_t>(total), 0);
    for (const int64_t index : share) ++seen[static_cast<size_t>(index)];
    world.all_reduce_sum(seen.data(), total);
    int64_t repeats = 0;
    for (const int64_t count : seen) {
      expect(count >= 1, "a sample of " + std::to_string(total) + " is on no rank");
      repeats += count - 1;
    }
    expect(repeats == sizes - total, "shares overlap beyond the padding");
    // Without padding (evaluation): an exact partition.
    const std::vector<int64_t> eval_share = data::shard_order(order, {world.rank(), world.size(), false});
    expect(world.sum(static_cast<int64_t>(eval_share.size())) == total, "evaluation shares do not partition");
  }
}

void check_gradients(MpiWorld& world) {
  nn::Linear<float> layer(3, 2);
  layer.train();
  // Rank r's gradient is (r + 1) * g0 for a known g0, so the average is g0 * (n + 1) / 2; the bias is
  // used on rank 0 only (the other ranks have no gradient for it: zeros in the average).
  const Tensor<float> weight = layer.named_parameters()[0].second, bias = layer.named_parameters()[1].second;
  Tensor<float> g = Tensor<float>::empty(weight.shape());
  for (int64_t i = 0; i < g.numel(); ++i) g.data()[i] = static_cast<float>(i + 1) * static_cast<float>(world.rank() + 1);
  weight.set_grad(g);
  if (world.rank() == 0) bias.set_grad(Tensor<float>::full(bias.shape(), 4.0f));
  else bias.clear_grad();
  distributed::GradientAverager average(layer);
  std::vector<float> loss{static_cast<float>(world.rank())};
  average(world, &loss);
  const double n = world.size();
  for (int64_t i = 0; i < weight.numel(); ++i)
    expect(std::abs(weight.grad().data()[i] - static_cast<float>((i + 1) * (n + 1) / 2)) < 1e-5,
           "weight gradient " + std::to_string(i));
  for (int64_t i = 0; i < bias.numel(); ++i)
    expect(std::abs(bias.grad().data()[i] - static_cast<float>(4.0 / n)) < 1e-6, "bias gradient");
  expect(loss[0] == static_cast<float>(n * (n - 1) / 2), "the extra scalar is not the sum over the ranks");
}

std::shared_ptr<models::CompactTransformer<float>> small_model(uint64_t seed) {
  models::ModelOptions options;
  options.num_classes = 10;
  options.image_size = 16;
  options.dropout = options.attention_dropout = options.stochastic_depth = 0.0;  // no randomness in a step
  options.seed = seed;
  return models::create("cct_2_3x2_32", options);
}

// Sample `index` of a made-up data set: its image is a pure function of the index (as the trainers'
// per-sample augmentation is seeded by the sample index), its label index % 10.
Tensor<float> images_of(const std::vector<int64_t>& indices) {
  Tensor<float> images = Tensor<float>::empty({static_cast<int64_t>(indices.size()), 3, 16, 16});
  for (size_t i = 0; i < indices.size(); ++i) {
    Generator gen(1000 + static_cast<uint64_t>(indices[i]));
    const Tensor<float> one = Tensor<float>::uniform({3, 16, 16}, -1.0, 1.0, gen);
    std::copy(one.data(), one.data() + one.numel(), images.data() + static_cast<int64_t>(i) * one.numel());
  }
  return images;
}
Tensor<int64_t> labels_of(const std::vector<int64_t>& indices) {
  Tensor<int64_t> labels = Tensor<int64_t>::empty({static_cast<int64_t>(indices.size())});
  for (size_t i = 0; i < indices.size(); ++i) labels.data()[i] = indices[i] % 10;
  return labels;
}

// `steps` AdamW steps on batches of `batch` samples from `order`, averaging gradients over `world`;
// the first step's (averaged) gradients are copied into `first_gradients`.
void train_steps(models::CompactTransformer<float>& model, const std::vector<int64_t>& order, int64_t batch,
                 int64_t steps, distributed::Communicator& world, std::vector<float>& first_gradients) {
  optim::AdamW<float> optimizer(optim::param_groups_no_decay_for_1d(model.named_parameters(), 0.05), {1e-3});
  distributed::GradientAverager average(model);
  model.train();
  for (int64_t step = 0; step < steps; ++step) {
    const std::vector<int64_t> indices(order.begin() + step * batch, order.begin() + (step + 1) * batch);
    const Tensor<float> loss = cross_entropy(model.forward(images_of(indices)), labels_of(indices), 0.1);
    optimizer.zero_grad();
    loss.backward();
    average(world);
    if (step == 0)
      for (const auto& entry : model.named_parameters())
        first_gradients.insert(first_gradients.end(), entry.second.grad().data(),
                               entry.second.grad().data() + entry.second.numel());
    optimizer.step();
  }
}

void check_equivalence(MpiWorld& world) {
  const int64_t global_batch = 8 * world.size(), steps = 4, total = global_batch * steps;
  Generator gen(3);
  const std::vector<int64_t> order = data::random_permutation(total, gen);
  // One process, the whole batch (every rank computes it, to compare locally).
  auto single = small_model(11);
  std::vector<float> single_gradients, parallel_gradients;
  train_steps(*single, order, global_batch, steps, distributed::Communicator::local(), single_gradients);
  // The job: each rank its share of every global batch.
  auto parallel = small_model(11);
  const std::vector<int64_t> share = data::shard_order(order, {world.rank(), world.size(), true});
  train_steps(*parallel, share, global_batch / world.size(), steps, world, parallel_gradients);
  // The averaged gradient is the whole batch's, up to float rounding (the sum runs in another order).
  double gradient_error = 0, gradient_scale = 0;
  for (size_t i = 0; i < single_gradients.size(); ++i) {
    gradient_error = std::max(gradient_error, static_cast<double>(std::abs(single_gradients[i] - parallel_gradients[i])));
    gradient_scale = std::max(gradient_scale, static_cast<double>(std::abs(single_gradients[i])));
  }
  double worst = 0, largest = 0;
  std::string worst_at = "none";
  const auto a = single->named_parameters(), b = parallel->named_parameters();
  for (size_t p = 0; p < a.size(); ++p)
    for (int64_t i = 0; i < a[p].second.numel(); ++i) {
      // The pooling scores' bias shifts every token's score alike, which the softmax over tokens
      // ignores: its exact gradient is 0 and what the float one holds is rounding noise, which AdamW
      // scales up to steps of about lr in a direction that depends on the summation order.
      if (a[p].first == "classifier.attention_pool.bias") continue;
      const double difference = std::abs(a[p].second.data()[i] - b[p].second.data()[i]);
      if (difference > worst) worst_at = a[p].first + "[" + std::to_string(i) + "]";
      worst = std::max(worst, difference);
      largest = std::max(largest, static_cast<double>(std::abs(a[p].second.data()[i])));
    }
  if (world.is_root())
    std::printf("equivalence: %d ranks x batch %lld vs 1 x batch %lld: first gradients differ by at most %.3g "
                "(largest %.3g); after %lld AdamW steps (lr 1e-3) the weights by %.3g at %s (largest weight %.3g)\n",
                world.size(), static_cast<long long>(global_batch / world.size()), static_cast<long long>(global_batch),
                gradient_error, gradient_scale, static_cast<long long>(steps), worst, worst_at.c_str(), largest);
  expect(gradient_error <= 1e-5 * gradient_scale, "first gradients differ by " + std::to_string(gradient_error));
  // AdamW divides by the root of the squared gradient's average, so a coordinate whose gradient is
  // near zero turns a rounding difference into a visible one: the tolerance is a tenth of one step.
  expect(worst <= 1e-4, "weights differ by " + std::to_string(worst) + " at " + worst_at + " (tolerance 1e-4, a tenth of an lr step)");
  // And the ranks hold the same weights as each other, bit for bit (they apply the same averaged step).
  double sum = 0;
  for (const auto& entry : b)
    for (int64_t i = 0; i < entry.second.numel(); ++i) sum += entry.second.data()[i];
  double mine = sum;
  expect(world.broadcast_value(mine) == sum, "ranks hold different weights");
}

void check_broadcast(MpiWorld& world) {
  auto model = small_model(100 + static_cast<uint64_t>(world.rank()));  // different on every rank
  distributed::broadcast_parameters(*model, world);
  auto reference = small_model(100);
  const auto a = model->named_parameters(), b = reference->named_parameters();
  for (size_t p = 0; p < a.size(); ++p)
    for (int64_t i = 0; i < a[p].second.numel(); ++i)
      expect(a[p].second.data()[i] == b[p].second.data()[i], "parameter " + a[p].first + " is not rank 0's");
}

void check_evaluation(MpiWorld& world) {
  auto model = small_model(5);
  const int64_t total = 37, batch = 5;  // uneven on purpose
  std::vector<int64_t> all(total);
  for (int64_t i = 0; i < total; ++i) all[static_cast<size_t>(i)] = i;
  const auto run = [&](const std::vector<int64_t>& indices) {
    const int64_t batches = (static_cast<int64_t>(indices.size()) + batch - 1) / batch;
    return train::evaluate(
        *model, batches, 10,
        [&](int64_t index, Tensor<int64_t>& labels) {
          const int64_t begin = index * batch;
          const int64_t end = std::min<int64_t>(begin + batch, static_cast<int64_t>(indices.size()));
          const std::vector<int64_t> chunk(indices.begin() + begin, indices.begin() + end);
          labels = labels_of(chunk);
          return model->forward(images_of(chunk));
        },
        "eval", "img");
  };
  const train::Evaluation whole = run(all);
  train::Evaluation sharded = run(data::shard_order(all, {world.rank(), world.size(), false}));
  train::all_reduce(sharded, world);
  expect(sharded.count == whole.count, "sharded count " + std::to_string(sharded.count));
  for (int64_t t = 0; t < 10; ++t)
    for (int64_t p = 0; p < 10; ++p)
      expect(sharded.confusion.count(t, p) == whole.confusion.count(t, p), "confusion matrices differ");
  expect(sharded.top1 == whole.top1 && sharded.top5 == whole.top5, "accuracies differ");
  expect(std::abs(sharded.loss - whole.loss) <= 1e-6 * std::max(1.0, std::abs(whole.loss)), "losses differ");
}

}  // namespace

int main(int argc, char** argv) {
  MpiWorld world(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "sampler") check_sampler(world);
    else if (mode == "gradients") check_gradients(world);
    else if (mode == "broadcast") check_broadcast(world);
    else if (mode == "equivalence") check_equivalence(world);
    else if (mode == "evaluation") check_evaluation(world);
    else if (mode == "fail") {
      if (world.rank() == 1) throw Error("deliberate failure");
      world.barrier();  // rank 0 waits here for a rank that will never come
    } else {
      throw Error("usage: distributed_checks sampler|gradients|broadcast|equivalence|evaluation|fail");
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s (%s): %s\n", dynamic_cast<const CheckFailed*>(&error) ? "FAILED" : "error",
                 world.where().c_str(), error.what());
    std::fflush(stderr);
    world.abort(1);
  }
  world.barrier();
  if (world.is_root()) std::printf("ok: %s on %d ranks\n", mode.c_str(), world.size());
  return 0;
}
