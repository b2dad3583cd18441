// The op registry against one table of gradient checks: every op registered by an op header
// (ops/registry.hpp) must have an entry here, pass its finite-difference check in double precision, and
// actually reach its backward node; every node an entry reaches must be a registered op. A new op
// without a gradient check, or with an unregistered node name, fails here.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <cct/library.hpp>

#include "test_helpers.hpp"

using namespace cct;
using cct::testing::random_constant;
using cct::testing::random_leaf;
using Inputs = std::vector<Tensor<double>>;

namespace {

struct Entry {
  GradcheckFn fn;
  Inputs inputs;
};

Tensor<double> positive_leaf(const Shape& shape, uint64_t seed) { return random_leaf(shape, seed, 0.5, 2.0); }

const std::map<std::string, Entry>& gradcheck_table() {
  static const std::map<std::string, Entry> table = [] {
    std::map<std::string, Entry> t;
    const Tensor<int64_t> tokens = Tensor<int64_t>::from_vector({0, 2, 4, 2}, {4});
    const Tensor<int64_t> targets = Tensor<int64_t>::from_vector({0, 3, 1, 4}, {4});
    const Tensor<double> soft = Tensor<double>::from_vector({0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0, 0, 0.25, 0.25, 0.25, 0.25},
                                                            {3, 4});
    // activation
    t["relu"] = {[](const Inputs& x) { return relu(x[0]); }, {random_leaf({3, 4}, 1)}};
    t["gelu"] = {[](const Inputs& x) { return gelu(x[0]); }, {random_leaf({3, 4}, 2)}};
    t["tanh"] = {[](const Inputs& x) { return tanh(x[0]); }, {random_leaf({3, 4}, 3)}};
    t["sigmoid"] = {[](const Inputs& x) { return sigmoid(x[0]); }, {random_leaf({3, 4}, 4)}};
    // attention (with its dropout: a fixed generator gives every evaluation the same mask)
    t["multi_head_attention"] = {[](const Inputs& x) {
                                   Generator gen(3);
                                   return multi_head_attention(x[0], AttentionOptions{2, 0.2, true}, Tensor<uint8_t>(), gen);
                                 },
                                 {random_leaf({2, 3, 12}, 5)}};
    // conv, pool
    t["conv2d"] = {[](const Inputs& x) { return conv2d(x[0], x[1], x[2], 1, 1); },
                   {random_leaf({1, 2, 5, 5}, 6), random_leaf({3, 2, 3, 3}, 7), random_leaf({3}, 8)}};
    t["conv1d"] = {[](const Inputs& x) { return conv1d(x[0], x[1], x[2], 1, 1); },
                   {random_leaf({1, 2, 6}, 9), random_leaf({3, 2, 3}, 10), random_leaf({3}, 11)}};
    t["conv2d_max_pool2d"] = {[](const Inputs& x) { return conv2d_max_pool2d(x[0], x[1], x[2], {1, 1, 1, 1}, 3, 2, 1); },
                              {random_leaf({1, 2, 5, 5}, 45), random_leaf({3, 2, 3, 3}, 46), random_leaf({3}, 47)}};
    t["max_pool2d"] = {[](const Inputs& x) { return max_pool2d(x[0], 2, 2); }, {random_leaf({1, 2, 4, 4}, 12)}};
    t["max_pool1d"] = {[](const Inputs& x) { return max_pool1d(x[0], 2, 2); }, {random_leaf({1, 2, 6}, 13)}};
    // dropout
    t["dropout"] = {[](const Inputs& x) {
                      Generator gen(5);
                      return dropout(x[0], 0.25, true, gen);
                    },
                    {random_leaf({3, 4}, 14)}};
    // elementwise (binary ones broadcast b over a's rows)
    t["add"] = {[](const Inputs& x) { return add(x[0], x[1]); }, {random_leaf({2, 3}, 15), random_leaf({3}, 16)}};
    t["sub"] = {[](const Inputs& x) { return sub(x[0], x[1]); }, {random_leaf({2, 3}, 17), random_leaf({3}, 18)}};
    t["mul"] = {[](const Inputs& x) { return mul(x[0], x[1]); }, {random_leaf({2, 3}, 19), random_leaf({3}, 20)}};
    t["div"] = {[](const Inputs& x) { return div(x[0], x[1]); }, {random_leaf({2, 3}, 21), positive_leaf({3}, 22)}};
    t["add_scalar"] = {[](const Inputs& x) { return add(x[0], 1.5); }, {random_leaf({2, 3}, 23)}};
    t["mul_scalar"] = {[](const Inputs& x) { return mul(x[0], -2.5); }, {random_leaf({2, 3}, 24)}};
    t["rdiv_scalar"] = {[](const Inputs& x) { return rdiv(2.0, x[0]); }, {positive_leaf({2, 3}, 25)}};
    t["exp"] = {[](const Inputs& x) { return exp(x[0]); }, {random_leaf({2, 3}, 26)}};
    t["log"] = {[](const Inputs& x) { return log(x[0]); }, {positive_leaf({2, 3}, 27)}};
    t["sqrt"] = {[](const Inputs& x) { return sqrt(x[0]); }, {positive_leaf({2, 3}, 28)}};
    t["pow"] = {[](const Inputs& x) { return pow(x[0], 2.5); }, {positive_leaf({2, 3}, 29)}};
    // embedding, losses
    t["embedding"] = {[tokens](const Inputs& x) { return embedding(tokens, x[0]); }, {random_leaf({5, 3}, 30)}};
    t["cross_entropy"] = {[targets](const Inputs& x) { return cross_entropy(x[0], targets, 0.1); },
                          {random_leaf({4, 5}, 31)}};
    t["cross_entropy_soft"] = {[soft](const Inputs& x) { return cross_entropy(x[0], soft); }, {random_leaf({3, 4}, 32)}};
    // products, normalisation
    t["matmul"] = {[](const Inputs& x) { return matmul(x[0], x[1], false, true); },
                   {random_leaf({2, 3}, 33), random_leaf({4, 3}, 34)}};
    t["linear"] = {[](const Inputs& x) { return linear(x[0], x[1], x[2]); },
                   {random_leaf({2, 3}, 35), random_leaf({4, 3}, 36), random_leaf({4}, 37)}};
    t["layer_norm"] = {[](const Inputs& x) { return layer_norm(x[0], x[1], x[2]); },
                       {random_leaf({2, 5}, 38), random_leaf({5}, 39), random_leaf({5}, 40)}};
    // reductions
    t["sum"] = {[](const Inputs& x) { return sum(x[0], 1); }, {random_leaf({2, 3}, 41)}};
    t["mean"] = {[](const Inputs& x) { return mean(x[0], 0); }, {random_leaf({2, 3}, 42)}};
    t["var"] = {[](const Inputs& x) { return var(x[0], std::vector<int64_t>{1}); }, {random_leaf({2, 4}, 43)}};
    t["max"] = {[](const Inputs& x) { return max(x[0], 1).values; }, {random_leaf({3, 4}, 44)}};
    t["min"] = {[](const Inputs& x) { return min(x[0], 1).values; }, {random_leaf({3, 4}, 45)}};
    // shapes (each times a constant, so the weighted sum does not make every gradient 1)
    t["reshape"] = {[](const Inputs& x) { return reshape(x[0], {3, 2}); }, {random_leaf({2, 3}, 46)}};
    t["unsqueeze"] = {[](const Inputs& x) { return unsqueeze(x[0], 0); }, {random_leaf({2, 3}, 47)}};
    t["squeeze"] = {[](const Inputs& x) { return squeeze(x[0], 1); }, {random_leaf({2, 1, 3}, 48)}};
    t["flatten"] = {[](const Inputs& x) { return flatten(x[0]); }, {random_leaf({2, 3, 2}, 49)}};
    t["permute"] = {[](const Inputs& x) { return permute(x[0], {1, 0}); }, {random_leaf({2, 3}, 50)}};
    t["narrow"] = {[](const Inputs& x) { return narrow(x[0], 1, 1, 2); }, {random_leaf({2, 4}, 51)}};
    t["slice"] = {[](const Inputs& x) { return slice(x[0], 1, 0, 4, 2); }, {random_leaf({2, 4}, 52)}};
    t["concat"] = {[](const Inputs& x) { return concat(std::vector<Tensor<double>>{x[0], x[1]}, 0); },
                   {random_leaf({2, 3}, 53), random_leaf({1, 3}, 54)}};
    t["expand"] = {[](const Inputs& x) { return expand(x[0], {4, 3}); }, {random_leaf({1, 3}, 55)}};
    // softmax
    t["softmax"] = {[](const Inputs& x) { return softmax(x[0], 1); }, {random_leaf({2, 4}, 56)}};
    t["log_softmax"] = {[](const Inputs& x) { return log_softmax(x[0], 1); }, {random_leaf({2, 4}, 57)}};
    return t;
  }();
  return table;
}

// The names of the nodes the graph of `out` reaches.
std::set<std::string> node_names(const Tensor<double>& out) {
  std::set<std::string> names;
  std::vector<std::shared_ptr<autograd::Node<double>>> pending{out.grad_fn()};
  std::set<const autograd::Node<double>*> seen;
  while (!pending.empty()) {
    const std::shared_ptr<autograd::Node<double>> node = pending.back();
    pending.pop_back();
    if (!node || !seen.insert(node.get()).second) continue;
    names.insert(node->name);
    for (const auto& edge : node->inputs) pending.push_back(edge.node);
  }
  return names;
}

std::set<std::string> registered() {
  const auto& names = ops::registered_op_names();
  return {names.begin(), names.end()};
}

}  // namespace

TEST_CASE("every registered op has an entry in the gradient-check table and passes it", "[gradcheck][registry]") {
  const std::set<std::string> ops = registered();
  REQUIRE(ops.size() >= 40);  // all op headers are in this unit (cct/library.hpp)
  for (const std::string& name : ops) {
    INFO("op '" << name << "' (registered in include/cct/ops/; add its entry to tests/test_gradcheck_table.cpp)");
    const auto entry = gradcheck_table().find(name);
    REQUIRE(entry != gradcheck_table().end());
    const GradcheckResult result = gradcheck(entry->second.fn, entry->second.inputs);
    INFO(result.message);
    CHECK(result.passed);
    // The entry really runs this op's backward.
    Inputs inputs;
    for (const Tensor<double>& input : entry->second.inputs) inputs.push_back(input.clone().requires_grad_());
    CHECK(node_names(entry->second.fn(inputs)).count(name) == 1);
  }
}

TEST_CASE("every op the table reaches is registered, and the table has no stray entries", "[gradcheck][registry]") {
  const std::set<std::string> ops = registered();
  for (const auto& [name, entry] : gradcheck_table()) {
    INFO("table entry '" << name << "'");
    CHECK(ops.count(name) == 1);
    Inputs inputs;
    for (const Tensor<double>& input : entry.inputs) inputs.push_back(input.clone().requires_grad_());
    for (const std::string& reached : node_names(entry.fn(inputs))) {
      INFO("node '" << reached << "' (register it with CCT_REGISTER_OPS in its op header)");
      CHECK(ops.count(reached) == 1);
    }
  }
}
