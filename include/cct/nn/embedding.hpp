// Embedding: a (num_embeddings, embedding_dim) table looked up by integer index, as torch.nn.Embedding,
// with an optional padding row that gets no gradient and an optional freeze (pretrained vectors).
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include "../ops/embedding.hpp"
#include "init.hpp"
#include "module.hpp"

namespace cct::nn {

template <typename T = float>
class Embedding : public Module<T> {
 public:
  // Rows start as N(0, 1) (PyTorch's init), the padding row (if any, padding_idx ≥ 0) as zero.
  // frozen: the table is registered as a parameter that is not trained (saved and loaded all the same).
  Embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx = -1, bool frozen = false,
            Generator& gen = default_generator())
      : padding_idx_(padding_idx) {
    CCT_CHECK(num_embeddings > 0 && embedding_dim > 0, "Embedding: sizes must be positive, got num_embeddings=",
              num_embeddings, ", embedding_dim=", embedding_dim);
    check_padding_idx(padding_idx, num_embeddings);
    Tensor<T> table = Tensor<T>::empty({num_embeddings, embedding_dim});
    init::normal_(table, 0.0, 1.0, gen);
    if (padding_idx >= 0) std::fill(table.data() + padding_idx * embedding_dim, table.data() + (padding_idx + 1) * embedding_dim, T(0));
    weight = this->register_parameter("weight", table, /*trainable=*/!frozen);
  }

  // From a given table (V, E), copied. The padding row, if one is named, is kept as given but receives
  // no gradient.
  explicit Embedding(const Tensor<T>& table, int64_t padding_idx = -1, bool frozen = true) : padding_idx_(padding_idx) {
    CCT_CHECK_SHAPE(table.dim() == 2 && table.numel() > 0, "Embedding: expected a non-empty (num_embeddings, "
                    "embedding_dim) table, got ", shape_str(table.shape()));
    check_padding_idx(padding_idx, table.size(0));
    weight = this->register_parameter("weight", table.detach().clone(), /*trainable=*/!frozen);
  }

  // torch.nn.Embedding.from_pretrained: the table `matrix` (V, E), copied, frozen by default.
  static std::shared_ptr<Embedding> from_pretrained(const Tensor<T>& matrix, bool frozen = true,
                                                    int64_t padding_idx = -1) {
    return std::make_shared<Embedding>(matrix, padding_idx, frozen);
  }

  // ids (any shape, int64) → ids.shape + (embedding_dim)
  Tensor<T> forward(const Tensor<int64_t>& ids) { return embedding(ids, weight, padding_idx_); }
  Tensor<T> operator()(const Tensor<int64_t>& ids) { return forward(ids); }

  int64_t num_embeddings() const { return weight.size(0); }
  int64_t embedding_dim() const { return weight.size(1); }
  int64_t padding_idx() const { return padding_idx_; }
  bool frozen() const { return !weight.requires_grad(); }
  // Stops (true) or resumes (false) training the table.
  void freeze(bool frozen = true) { weight.requires_grad_(!frozen); }

  std::string type_name() const override { return "Embedding"; }
  // ids of any shape → ids.shape + (embedding_dim); a lookup counts no MACs.
  LayerDescription describe(const Shape& input, Describer<T>&) const override {
    Shape output = input;
    output.push_back(embedding_dim());
    return {output};
  }
  std::string extra_repr() const override {
    return std::to_string(num_embeddings()) + ", " + std::to_string(embedding_dim()) +
           (padding_idx_ >= 0 ? ", padding_idx=" + std::to_string(padding_idx_) : std::string()) +
           (frozen() ? ", frozen" : "");
  }

  Tensor<T> weight;

 private:
  static void check_padding_idx(int64_t padding_idx, int64_t num_embeddings) {
    CCT_CHECK(padding_idx < num_embeddings, "Embedding: padding_idx ", padding_idx, " is out of range for ",
              num_embeddings, " embeddings");
  }

  int64_t padding_idx_;
};

// Compiled mode (config.hpp): these instantiations are compiled once, in cct::compiled.
#ifdef CCT_EXTERN_TEMPLATE
#define CCT_NN_EMBEDDING_TEMPLATES(T) \
  CCT_EXTERN_TEMPLATE class Embedding<T>;
CCT_FOR_FLOATING_TYPES(CCT_NN_EMBEDDING_TEMPLATES)
#undef CCT_NN_EMBEDDING_TEMPLATES
#endif

}  // namespace cct::nn
