// Storage: one 64-byte-aligned buffer of elements, shared by every tensor handle that views it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "../config.hpp"

namespace cct {

constexpr size_t kStorageAlignment = 64;  // one cache line, and what AVX-512 loads like

template <typename T>
class Storage {
 public:
  // Uninitialised storage for `size` elements (zero elements allocate nothing).
  explicit Storage(int64_t size) : size_(size) {
    CCT_CHECK(size >= 0, "Storage: negative size ", size);
    if (size == 0) return;
    const size_t bytes = (static_cast<size_t>(size) * sizeof(T) + kStorageAlignment - 1) /
                         kStorageAlignment * kStorageAlignment;
    data_ = static_cast<T*>(std::aligned_alloc(kStorageAlignment, bytes));
    if (!data_) throw std::bad_alloc();
  }
  ~Storage() { std::free(data_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  T* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace cct
