// Storage: one 64-byte-aligned buffer of elements, shared by every tensor handle that views it, and
// the block cache behind it.
//
// Why a cache: a training step allocates the same large buffers (activations, gradients, im2col
// columns) every iteration. glibc returns blocks this large to the kernel on free, so each step would
// page-fault its whole working set in again, which costs as much as a large GEMM. Freed blocks of at
// least kCacheMinBytes are therefore kept, keyed by their exact (rounded) size, and handed out again;
// from the second step on a training loop allocates no fresh memory. The cache holds at most
// storage_cache_limit() bytes (default 8 GiB, or CCT_STORAGE_CACHE_MB from the environment) and
// `empty_storage_cache()` returns everything to the system.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "../config.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace cct {

constexpr size_t kStorageAlignment = 64;  // one cache line, and what AVX-512 loads like

namespace detail {

class StorageCache {
 public:
  static constexpr size_t kCacheMinBytes = size_t(1) << 16;

  static StorageCache& instance() {
    // Never destroyed: tensors in static storage may be freed after it would have been.
    static StorageCache* cache = new StorageCache();
    return *cache;
  }

  // Rounds a request the way allocate/release key it: cache lines, or whole pages for large blocks.
  static size_t rounded(size_t bytes) {
    const size_t unit = bytes >= kCacheMinBytes ? 4096 : kStorageAlignment;
    return (bytes + unit - 1) / unit * unit;
  }

  void* allocate(size_t bytes) {
    if (bytes >= kCacheMinBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_blocks_.find(bytes);
      if (it != free_blocks_.end() && !it->second.empty()) {
        void* block = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= bytes;
        return block;
      }
    }
    void* block = fresh_block(bytes);
    if (!block) {
      empty();  // give the cache back and try once more before failing
      block = fresh_block(bytes);
      if (!block) throw std::bad_alloc();
    }
    return block;
  }

  // Blocks of kHugePageBytes or more start on a 2 MiB boundary and ask Linux for transparent huge pages
  // (MADV_HUGEPAGE; Debian's default THP mode, "madvise", gives them only to regions that ask): one
  // page fault per 2 MiB instead of 512 when a step first touches its activations, and fewer TLB misses
  // in the products that stream them. A CCT-7 training step at one thread spent a quarter of its time
  // in the kernel faulting 4.6 GB in 4 KiB pages.
  static constexpr size_t kHugePageBytes = size_t(2) << 20;
  static void* fresh_block(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHugePageBytes) {
      void* block = std::aligned_alloc(kHugePageBytes, (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
      if (block) madvise(block, bytes, MADV_HUGEPAGE);  // advice only: failure changes nothing
      return block;
    }
#endif
    return std::aligned_alloc(kStorageAlignment, bytes);
  }

  void release(void* block, size_t bytes) {
    if (bytes >= kCacheMinBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + bytes <= limit_) {
        free_blocks_[bytes].push_back(block);
        cached_bytes_ += bytes;
        return;
      }
    }
    std::free(block);
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, blocks] : free_blocks_)
      for (void* block : blocks) std::free(block);
    free_blocks_.clear();
    cached_bytes_ = 0;
  }

  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }
  size_t limit() const { return limit_; }
  void set_limit(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      limit_ = bytes;
    }
    if (cached_bytes() > bytes) empty();
  }

 private:
  StorageCache() {
    if (const char* env = std::getenv("CCT_STORAGE_CACHE_MB")) limit_ = static_cast<size_t>(std::atoll(env)) << 20;
  }

  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_blocks_;
  size_t cached_bytes_ = 0;
  size_t limit_ = size_t(8) << 30;
};

}  // namespace detail

// Bytes currently held by the block cache (freed, ready for reuse).
inline size_t storage_cache_bytes() { return detail::StorageCache::instance().cached_bytes(); }
// Returns every cached block to the system.
inline void empty_storage_cache() { detail::StorageCache::instance().empty(); }
// Caps the cache; 0 disables caching.
inline void set_storage_cache_limit(size_t bytes) { detail::StorageCache::instance().set_limit(bytes); }

template <typename T>
class Storage {
 public:
  // Uninitialised storage for `size` elements (zero elements allocate nothing).
  explicit Storage(int64_t size) : size_(size) {
    CCT_CHECK(size >= 0, "Storage: negative size ", size);
    if (size == 0) return;
    bytes_ = detail::StorageCache::rounded(static_cast<size_t>(size) * sizeof(T));
    data_ = static_cast<T*>(detail::StorageCache::instance().allocate(bytes_));
  }
  ~Storage() {
    if (data_) detail::StorageCache::instance().release(data_, bytes_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  T* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  int64_t size_ = 0;
  size_t bytes_ = 0;
};

}  // namespace cct
