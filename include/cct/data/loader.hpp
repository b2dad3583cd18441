// DataLoader: turns an ImageDataset into shuffled, augmented, normalised float batches, assembled on
// one background thread (a few batches ahead) while the model computes.
//
// Reproducibility is by construction, not by scheduling: the order of epoch e is a pure function of
// (seed, e), sample d's augmentation draws from a Generator seeded by (seed, e, d), and batch b's
// Mixup/CutMix from one seeded by (seed, e, b). So a batch is the same whether it is built on the
// worker or by make_batch(), for any thread count, and resuming at epoch e reproduces epoch e.
// The worker never calls parallel_for: the model's OpenMP team keeps the cores, and one thread builds
// a CIFAR batch of 128 (AutoAugment included) in a few milliseconds.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../core/generator.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "augment.hpp"
#include "dataset.hpp"
#include "shard.hpp"
#include "transforms.hpp"

namespace cct::data {

struct Batch {
  Tensor<float> images;          // (B, C, H, W), normalised (and mixed, with Mixup/CutMix)
  Tensor<int64_t> labels;        // (B,) the samples' own labels
  Tensor<float> soft_targets;    // (B, num_classes) with Mixup/CutMix configured; undefined otherwise
  std::vector<int64_t> indices;  // the dataset index of each sample
  int64_t epoch = 0;
  int64_t index = 0;             // position of this batch in its epoch
  MixupDecision mix;             // what Mixup/CutMix did to this batch (λ = 1: nothing)

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  uint64_t seed = 0;
  Compose transform;                             // per-sample uint8 transforms (crop, flip, AutoAugment, ...)
  Normalize normalize;                           // default: pixel / 255
  std::vector<FloatTransform> float_transforms;  // per sample after normalisation (RandomErasing)
  std::optional<MixupOptions> mixup;             // batch-level Mixup/CutMix; num_classes 0 = the dataset's
  int64_t prefetch = 2;                          // batches the worker may have ready ahead of the consumer
  Shard shard;                                   // data-parallel: this rank's share of every epoch (data/shard.hpp)
};

class DataLoader {
 public:
  DataLoader(ImageDataset dataset, LoaderOptions options) : dataset_(std::move(dataset)), options_(std::move(options)) {
    CCT_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive, got ", options_.batch_size);
    CCT_CHECK(options_.prefetch > 0, "DataLoader: prefetch must be positive, got ", options_.prefetch);
    CCT_CHECK(!dataset_.empty(), "DataLoader: the dataset is empty");
    set_mixup(options_.mixup);
  }
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;
  ~DataLoader() { stop_worker(); }

  const ImageDataset& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }
  // Samples per epoch on this rank (the whole data set for one process).
  int64_t epoch_size() const { return shard_size(dataset_.size(), options_.shard); }
  int64_t num_batches() const {
    const int64_t n = epoch_size(), b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }

  // Replaces the Mixup/CutMix configuration (std::nullopt switches it off, e.g. late in training).
  // An epoch already started keeps the configuration it started with.
  void set_mixup(std::optional<MixupOptions> mixup) {
    if (mixup && mixup->num_classes == 0) mixup->num_classes = dataset_.num_classes();
    options_.mixup = mixup;
    mixer_.reset();
    if (mixup) mixer_.emplace(*mixup);
  }

  // The sample order of `epoch`: a seeded permutation (a pure function of seed and epoch) or 0..N-1,
  // and of it this rank's share when the loader is sharded.
  std::vector<int64_t> epoch_order(int64_t epoch) const {
    if (!options_.shuffle) return shard_order(identity_order(dataset_.size()), options_.shard);
    Generator gen(detail::derive_seed(options_.seed, static_cast<uint64_t>(epoch), 0, kShuffleStream));
    return shard_order(random_permutation(dataset_.size(), gen), options_.shard);
  }

  // Builds batch `batch_index` of `epoch` synchronously (what the worker does; useful for evaluation
  // and tests).
  Batch make_batch(int64_t epoch, int64_t batch_index) const {
    return build_batch(epoch, batch_index, epoch_order(epoch), mixer_);
  }

  // Starts producing the batches of `epoch` on the background thread (stopping any epoch in progress).
  void start_epoch(int64_t epoch) {
    stop_worker();
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    stop_requested_ = false;
    producer_done_ = false;
    started_ = true;
    epoch_ = epoch;
    worker_ = std::thread([this, epoch, mixer = mixer_] { produce(epoch, mixer); });
  }

  // The next batch of the current epoch; false when the epoch is exhausted. Rethrows, on this thread,
  // any exception the worker hit while building the batch (after which the epoch is over).
  bool next(Batch& batch) {
    CCT_CHECK(started_, "DataLoader::next: call start_epoch(epoch) first");
    Item item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [&] { return !queue_.empty() || producer_done_; });
      if (queue_.empty()) return false;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    space_.notify_all();
    if (item.error) std::rethrow_exception(item.error);
    batch = std::move(item.batch);
    return true;
  }

  int64_t epoch() const { return epoch_; }

 private:
  static constexpr uint64_t kShuffleStream = 1, kSampleStream = 2, kMixupStream = 3;

  struct Item {
    Batch batch;
    std::exception_ptr error;
  };

  static std::vector<int64_t> identity_order(int64_t n) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    return order;
  }

  Batch build_batch(int64_t epoch, int64_t batch_index, const std::vector<int64_t>& order,
                    const std::optional<Mixup>& mixer) const {
    CCT_CHECK(batch_index >= 0 && batch_index < num_batches(), "DataLoader: batch ", batch_index,
              " is out of range for ", num_batches(), " batches");
    const int64_t begin = batch_index * options_.batch_size;
    const int64_t end = std::min<int64_t>(static_cast<int64_t>(order.size()), begin + options_.batch_size);
    Batch batch;
    batch.epoch = epoch;
    batch.index = batch_index;
    batch.indices.assign(order.begin() + begin, order.begin() + end);
    const int64_t count = end - begin;
    batch.labels = Tensor<int64_t>::empty({count});
    Shape sample_shape;
    float* out = nullptr;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t index = batch.indices[static_cast<size_t>(i)];
      batch.labels.data()[i] = dataset_.label(index);
      Generator gen(detail::derive_seed(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index),
                                        kSampleStream));
      Image image = dataset_.image(index);
      options_.transform(image, gen);
      if (i == 0) {
        sample_shape = image.shape();
        batch.images = Tensor<float>::empty({count, image.channels, image.height, image.width});
        out = batch.images.data();
      }
      CCT_CHECK_SHAPE(image.shape() == sample_shape, "DataLoader: sample ", index, " transformed to ",
                      shape_str(image.shape()), " but the batch's first sample to ", shape_str(sample_shape),
                      " (the transforms must produce one size)");
      float* sample = out + i * image.numel();
      options_.normalize.apply(image.pixels.data(), image.channels, image.height, image.width, sample);
      const FloatImageView view{sample, image.channels, image.height, image.width};
      for (const FloatTransform& transform : options_.float_transforms) transform(view, gen);
    }
    if (mixer) {
      Generator gen(detail::derive_seed(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index),
                                        kMixupStream));
      batch.soft_targets = (*mixer)(batch.images, batch.labels, gen, &batch.mix);
    }
    return batch;
  }

  // The worker: builds the epoch's batches in order, at most `prefetch` ahead of the consumer. An
  // exception ends the epoch and is queued for next() to rethrow.
  void produce(int64_t epoch, const std::optional<Mixup>& mixer) {
    try {
      const std::vector<int64_t> order = epoch_order(epoch);
      for (int64_t b = 0; b < num_batches(); ++b) {
        {
          std::unique_lock<std::mutex> lock(mutex_);
          space_.wait(lock, [&] { return stop_requested_ || static_cast<int64_t>(queue_.size()) < options_.prefetch; });
          if (stop_requested_) break;
        }
        Item item;
        item.batch = build_batch(epoch, b, order, mixer);
        {
          std::lock_guard<std::mutex> lock(mutex_);
          queue_.push_back(std::move(item));
        }
        ready_.notify_all();
      }
    } catch (...) {
      Item item;
      item.error = std::current_exception();
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(item));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      producer_done_ = true;
    }
    ready_.notify_all();
  }

  void stop_worker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_requested_ = true;
    }
    space_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  ImageDataset dataset_;
  LoaderOptions options_;
  std::optional<Mixup> mixer_;

  std::mutex mutex_;
  std::condition_variable ready_;  // a batch was queued, or the producer finished
  std::condition_variable space_;  // the queue has room, or a stop was requested
  std::deque<Item> queue_;
  bool stop_requested_ = false;
  bool producer_done_ = false;
  bool started_ = false;
  int64_t epoch_ = 0;
  std::thread worker_;
};

}  // namespace cct::data
