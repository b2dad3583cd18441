// Each rank's share of an epoch's sample order for data-parallel training, with the semantics of
// PyTorch's DistributedSampler: rank r of W takes positions r, r + W, r + 2W, ... of the order, so the
// shares are disjoint and together cover the epoch. For training (`pad`), the order first wraps around
// to a multiple of W, so every rank gets the same count and runs the same number of steps (a rank with
// one step more would wait forever in that step's allreduce); for evaluation nothing is repeated and
// the first N mod W ranks hold one sample more.
#pragma once

#include <cstdint>
#include <vector>

#include "../config.hpp"

namespace cct::data {

struct Shard {
  int rank = 0;
  int world = 1;
  bool pad = true;  // repeat the first samples so that all ranks get the same count
};

// How many of `total` samples rank `shard.rank` gets.
inline int64_t shard_size(int64_t total, const Shard& shard) {
  CCT_CHECK(shard.world >= 1 && shard.rank >= 0 && shard.rank < shard.world, "Shard: rank ", shard.rank,
            " is not in a world of ", shard.world);
  if (shard.world == 1) return total;
  if (shard.pad) return (total + shard.world - 1) / shard.world;
  return total / shard.world + (shard.rank < total % shard.world ? 1 : 0);
}

// This rank's share of `order` (the epoch's permutation, the same on every rank).
inline std::vector<int64_t> shard_order(const std::vector<int64_t>& order, const Shard& shard) {
  if (shard.world == 1) return order;
  const int64_t total = static_cast<int64_t>(order.size());
  const int64_t count = shard_size(total, shard);
  std::vector<int64_t> share;
  share.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    const int64_t position = shard.rank + k * shard.world;
    if (position >= total && !shard.pad) break;
    share.push_back(order[static_cast<size_t>(total > 0 ? position % total : 0)]);
  }
  return share;
}

}  // namespace cct::data
