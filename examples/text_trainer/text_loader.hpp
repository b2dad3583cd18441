// TextLoader: mini-batches of a text data set for the text trainer: ids (B, seq_len) and mask
// (B, seq_len) from Vocabulary::encode_batch, with the labels. The order of an epoch is a seeded
// permutation that is a pure function of (seed, epoch), like data::DataLoader's, so a run resumed in
// the middle of an epoch sees the same batches as one that was never stopped; under mpirun each rank
// takes its share of it (data/shard.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <cct/config.hpp>
#include <cct/core/generator.hpp>
#include <cct/core/tensor.hpp>
#include <cct/data/dataset.hpp>
#include <cct/data/shard.hpp>
#include <cct/text/datasets.hpp>
#include <cct/text/vocabulary.hpp>

namespace text_trainer {
using namespace cct;

struct TextBatch {
  Tensor<int64_t> ids;     // (B, seq_len)
  Tensor<uint8_t> mask;    // (B, seq_len), 1 = real word
  Tensor<int64_t> labels;  // (B)
  std::vector<int64_t> rows;  // which examples of the data set, in batch order
  int64_t size() const { return static_cast<int64_t>(rows.size()); }
};

struct TextLoaderOptions {
  int64_t batch_size = 64;
  int64_t seq_len = 64;
  bool shuffle = true;
  bool drop_last = false;  // a last, smaller batch is kept: small text sets cannot spare the examples
  uint64_t seed = 0;
  // Training augmentation: each word of a sentence becomes "<unk>" with this probability, so the model
  // does not lean on any one word and the "<unk>" vector (which unseen test words map to) is trained
  // in real sentences. Drawn from (seed, epoch, batch, rank): a resumed run sees the same batches.
  double word_dropout = 0;
  data::Shard shard;  // data-parallel: this rank's share of every epoch
};

class TextLoader {
 public:
  // Keeps references: `dataset` and `vocabulary` must outlive the loader.
  TextLoader(const text::TextDataset& dataset, const text::Vocabulary& vocabulary, TextLoaderOptions options)
      : dataset_(dataset), vocabulary_(vocabulary), options_(options) {
    CCT_CHECK(options.batch_size >= 1, "TextLoader: batch_size must be positive, got ", options.batch_size);
    CCT_CHECK(options.seq_len >= 1, "TextLoader: seq_len must be positive, got ", options.seq_len);
    dataset.validate();
  }

  int64_t num_batches() const {
    const int64_t n = data::shard_size(dataset_.size(), options_.shard), b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }
  const TextLoaderOptions& options() const { return options_; }

  // The example order of `epoch`: a permutation seeded from (seed, epoch) alone, or 0..N-1.
  std::vector<int64_t> epoch_order(int64_t epoch) const {
    std::vector<int64_t> order(static_cast<size_t>(dataset_.size()));
    for (int64_t i = 0; i < dataset_.size(); ++i) order[static_cast<size_t>(i)] = i;
    if (!options_.shuffle) return data::shard_order(order, options_.shard);
    Generator gen(data::derive_seed(options_.seed, static_cast<uint64_t>(epoch), 0, kShuffleStream));
    return data::shard_order(data::random_permutation(dataset_.size(), gen), options_.shard);
  }

  // Batch `index` of an epoch whose order is `order` (from epoch_order); word dropout applies when the
  // training `epoch` is given (evaluation passes none).
  TextBatch batch(const std::vector<int64_t>& order, int64_t index, int64_t epoch = -1) const {
    CCT_CHECK(index >= 0 && index < num_batches(), "TextLoader::batch: batch ", index, " is out of range for ",
              num_batches(), " batches");
    const int64_t begin = index * options_.batch_size;
    const int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order.size()));
    TextBatch out;
    out.rows.assign(order.begin() + begin, order.begin() + end);
    text::EncodedBatch encoded = vocabulary_.encode_batch(dataset_.texts, out.rows, options_.seq_len);
    out.ids = std::move(encoded.ids);
    out.mask = std::move(encoded.mask);
    if (options_.word_dropout > 0 && epoch >= 0) {
      const uint64_t stream = static_cast<uint64_t>(index) * static_cast<uint64_t>(options_.shard.world) +
                              static_cast<uint64_t>(options_.shard.rank);
      Generator gen(data::derive_seed(options_.seed, static_cast<uint64_t>(epoch), stream, kWordDropoutStream));
      int64_t* ids = out.ids.data();
      const uint8_t* mask = out.mask.data();
      for (int64_t i = 0; i < out.ids.numel(); ++i)
        if (mask[i] && gen.uniform() < options_.word_dropout) ids[i] = text::Vocabulary::kUnknownIndex;
    }
    out.labels = Tensor<int64_t>::empty({out.size()});
    for (int64_t i = 0; i < out.size(); ++i)
      out.labels.data()[i] = dataset_.labels[static_cast<size_t>(out.rows[static_cast<size_t>(i)])];
    return out;
  }

 private:
  static constexpr uint64_t kShuffleStream = 1;
  static constexpr uint64_t kWordDropoutStream = 2;

  const text::TextDataset& dataset_;
  const text::Vocabulary& vocabulary_;
  TextLoaderOptions options_;
};

}  // namespace text_trainer
