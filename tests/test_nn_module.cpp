// nn::Module, the containers and the initialisers: names and order against PyTorch's rules, modes,
// gradients, state-dict loading, and initialiser statistics. LayerScale, the layer that
// docs/adding_a_layer.md adds, with the tests that page shows, and the check that its snippets are
// the code compiled here.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <cct/nn/containers.hpp>
#include <cct/nn/init.hpp>
#include <cct/nn/layer_scale.hpp>
#include <cct/nn/linear.hpp>
#include <cct/nn/module.hpp>
#include <cct/ops/activation.hpp>
#include <cct/ops/elementwise.hpp>
#include <cct/ops/reduce.hpp>

#include "test_helpers.hpp"

using cct::Generator;
using cct::Shape;
using cct::Tensor;
using cct::nn::Module;
using cct::nn::ModuleList;
using cct::nn::NamedTensors;
using cct::nn::Sequential;
using cct::nn::UnaryModule;
namespace init = cct::nn::init;
using cct::testing::check_gradients;
using cct::testing::random_leaf;
using Inputs = std::vector<Tensor<double>>;
namespace nn = cct::nn;

namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- a small tree of test modules ---------------------------------------------------------------
// x·weight + bias over the last dim.
template <typename T>
class Affine : public UnaryModule<T> {
 public:
  explicit Affine(int64_t features) {
    this->register_parameter("weight", Tensor<T>::full({features}, T(1)));
    this->register_parameter("bias", Tensor<T>::zeros({features}));
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    return x * this->parameter("weight") + this->parameter("bias");
  }
  std::string type_name() const override { return "Affine"; }
  std::string extra_repr() const override {
    return "features=" + std::to_string(this->parameter("weight").numel());
  }
};

// x·weight over the last dim; the weight may be handed in (gradcheck builds it from its inputs).
template <typename T>
class Scale : public UnaryModule<T> {
 public:
  explicit Scale(Tensor<T> weight) { weight_ = this->register_parameter("weight", std::move(weight)); }
  Tensor<T> forward(const Tensor<T>& x) override { return x * weight_; }
  std::string type_name() const override { return "Scale"; }

 private:
  Tensor<T> weight_;  // a handle sharing the registered tensor
};

// A fixed table, registered as a frozen parameter (like a sine positional embedding).
template <typename T>
class FrozenTable : public Module<T> {
 public:
  FrozenTable() { this->register_parameter("table", Tensor<T>::full({4, 3}, T(0.5)), /*trainable=*/false); }
  std::string type_name() const override { return "FrozenTable"; }
};

// Registers its child before its own parameter and buffer: the state dict still lists own tensors first.
template <typename T>
class Block : public UnaryModule<T> {
 public:
  Block() {
    fc_ = this->register_module("fc", std::make_shared<Affine<T>>(3));
    this->register_parameter("gamma", Tensor<T>::ones({3}));
    this->register_buffer("count", Tensor<T>::zeros({1}));
  }
  Tensor<T> forward(const Tensor<T>& x) override { return fc_->forward(x) * this->parameter("gamma"); }
  std::string type_name() const override { return "Block"; }

 private:
  std::shared_ptr<Affine<T>> fc_;
};

// Tokens (4, 3): h = x·scale + table, then the blocks, then head = Sequential(Affine, GELU, Scale).
template <typename T>
class Net : public UnaryModule<T> {
 public:
  Net() {
    embed_ = this->register_module("embed", std::make_shared<FrozenTable<T>>());
    this->register_parameter("scale", Tensor<T>::ones({3}));
    this->register_buffer("running", Tensor<T>::zeros({2}));
    this->register_buffer("scratch", Tensor<T>::zeros({2}), /*persistent=*/false);
    blocks_ = this->register_module("blocks", std::make_shared<ModuleList<T, Block<T>>>());
    blocks_->push_back(std::make_shared<Block<T>>());
    blocks_->push_back(std::make_shared<Block<T>>());
    head_ = this->register_module("head", std::make_shared<Sequential<T>>());
    head_->push_back(std::make_shared<Affine<T>>(3));
    head_->push_back(std::make_shared<cct::nn::GELU<T>>());
    head_->push_back(std::make_shared<Scale<T>>(Tensor<T>::ones({3})));
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> h = x * this->parameter("scale") + embed_->parameter("table");
    for (const auto& block : *blocks_) h = block->forward(h);
    return head_->forward(h);
  }
  std::string type_name() const override { return "Net"; }

 private:
  std::shared_ptr<FrozenTable<T>> embed_;
  std::shared_ptr<ModuleList<T, Block<T>>> blocks_;
  std::shared_ptr<Sequential<T>> head_;
};

template <typename Pairs>
std::vector<std::string> names_of(const Pairs& pairs) {
  std::vector<std::string> out;
  for (const auto& entry : pairs) out.push_back(entry.first);
  return out;
}

// Gives every parameter of the tree distinct random values (so tests see where each one went).
template <typename T>
void randomise(Module<T>& module, uint64_t seed) {
  Generator gen(seed);
  for (auto& tensor : module.parameters()) init::uniform_(tensor, -1.0, 1.0, gen);
}

template <typename T>
const Tensor<T>& tensor_named(const NamedTensors<T>& tensors, const std::string& name) {
  for (const auto& entry : tensors)
    if (entry.first == name) return entry.second;
  throw cct::Error("test: no tensor " + name);
}

double sample_mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}
double sample_std(const std::vector<double>& v) {
  const double mean = sample_mean(v);
  double sum = 0;
  for (double x : v) sum += (x - mean) * (x - mean);
  return std::sqrt(sum / static_cast<double>(v.size() - 1));
}
template <typename T>
std::vector<double> as_doubles(const Tensor<T>& t) {
  return std::vector<double>(t.begin(), t.end());
}

}  // namespace

// ---- names and order ------------------------------------------------------------------------------
// The expected lists are what PyTorch 1.13 prints for the same tree built from nn.Module,
// nn.ModuleList and nn.Sequential (parameters registered as attributes in the same order).

TEST_CASE("named_modules, named_parameters and named_buffers follow PyTorch's order", "[nn][module]") {
  Net<float> net;
  REQUIRE(names_of(net.named_modules()) ==
          std::vector<std::string>{"", "embed", "blocks", "blocks.0", "blocks.0.fc", "blocks.1", "blocks.1.fc",
                                   "head", "head.0", "head.1", "head.2"});
  REQUIRE(net.named_modules("model")[3].first == "model.blocks.0");
  REQUIRE(net.named_modules()[4].second->type_name() == "Affine");

  // Each module's own parameters, modules depth first: "scale" precedes the children although the
  // child "embed" was registered before it; in Block, "gamma" precedes "fc.*" likewise.
  const NamedTensors<float> params = net.named_parameters();
  REQUIRE(names_of(params) == std::vector<std::string>{"scale", "embed.table", "blocks.0.gamma", "blocks.0.fc.weight",
                                                       "blocks.0.fc.bias", "blocks.1.gamma", "blocks.1.fc.weight",
                                                       "blocks.1.fc.bias", "head.0.weight", "head.0.bias",
                                                       "head.2.weight"});
  REQUIRE(params[1].second.shape() == Shape{4, 3});
  // The handles are the module's own tensors, not copies.
  REQUIRE(params[0].second.is_same(net.parameter("scale")));
  REQUIRE(names_of(net.named_parameters(/*recurse=*/false)) == std::vector<std::string>{"scale"});
  REQUIRE(net.parameters().size() == 11);

  REQUIRE(names_of(net.named_buffers()) ==
          std::vector<std::string>{"running", "scratch", "blocks.0.count", "blocks.1.count"});
  REQUIRE(names_of(net.named_buffers(false)) == std::vector<std::string>{"running", "scratch"});
  REQUIRE(names_of(net.named_children()) == std::vector<std::string>{"embed", "blocks", "head"});
}

TEST_CASE("state_dict lists own parameters, own persistent buffers, then children (PyTorch's rule)", "[nn][module]") {
  Net<float> net;
  const NamedTensors<float> state = net.state_dict();
  REQUIRE(names_of(state) == std::vector<std::string>{"scale", "running", "embed.table", "blocks.0.gamma",
                                                      "blocks.0.count", "blocks.0.fc.weight", "blocks.0.fc.bias",
                                                      "blocks.1.gamma", "blocks.1.count", "blocks.1.fc.weight",
                                                      "blocks.1.fc.bias", "head.0.weight", "head.0.bias",
                                                      "head.2.weight"});
  // Detached handles onto the module's storage (as PyTorch's state_dict): writes show through.
  REQUIRE_FALSE(state[0].second.requires_grad());
  REQUIRE(state[0].second.shares_storage(net.parameter("scale")));
  REQUIRE(state[1].second.shares_storage(net.buffer("running")));
}

TEST_CASE("a shared module or tied weight is listed once by named_parameters, under every name by state_dict",
          "[nn][module]") {
  // PyTorch: nn.Sequential(a, a) gives state_dict ['0.weight', '1.weight'], named_parameters ['0.weight'].
  auto shared = std::make_shared<Scale<float>>(Tensor<float>::ones({2}));
  Sequential<float> seq;
  seq.push_back(shared);
  seq.push_back(shared);
  REQUIRE(names_of(seq.named_modules()) == std::vector<std::string>{"", "0"});
  REQUIRE(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight"});
  REQUIRE(names_of(seq.state_dict()) == std::vector<std::string>{"0.weight", "1.weight"});
  REQUIRE(seq.num_parameters() == 2);

  // Two modules holding one tensor (weight tying).
  Tensor<float> tied = Tensor<float>::ones({3});
  Sequential<float> tied_seq;
  tied_seq.push_back(std::make_shared<Scale<float>>(tied));
  tied_seq.push_back(std::make_shared<Scale<float>>(tied));
  REQUIRE(names_of(tied_seq.named_parameters()) == std::vector<std::string>{"0.weight"});
  REQUIRE(names_of(tied_seq.state_dict()) == std::vector<std::string>{"0.weight", "1.weight"});
  REQUIRE(tied_seq.num_parameters() == 3);
}

// ---- frozen parameters and counts -----------------------------------------------------------------

TEST_CASE("frozen parameters are saved and counted but not trained", "[nn][module]") {
  Net<float> net;
  const Tensor<float>& table = net.find_parameter("embed.table");
  REQUIRE_FALSE(table.requires_grad());
  REQUIRE(net.parameter("scale").requires_grad());

  // scale 3 + table 12 + two blocks × (gamma 3 + fc 3 + 3) + head (3 + 3 + 3) = 42; 30 without the table.
  REQUIRE(net.num_parameters() == 42);
  REQUIRE(net.num_parameters(/*trainable_only=*/true) == 30);
  const auto trainable = net.trainable_parameters();
  REQUIRE(trainable.size() == 10);
  for (const auto& t : trainable) REQUIRE_FALSE(t.is_same(table));

  // Freezing a subtree is seen everywhere (trainable = the tensor's requires_grad).
  net.child("blocks")->requires_grad_(false);
  REQUIRE(net.num_parameters(true) == 30 - 18);
  REQUIRE(net.trainable_parameters().size() == 4);
  net.requires_grad_(true);
  REQUIRE(net.num_parameters(true) == 42);
}

// ---- modes and gradients --------------------------------------------------------------------------

TEST_CASE("train and eval propagate to every descendant", "[nn][module]") {
  Net<float> net;
  for (const auto& [name, module] : net.named_modules()) REQUIRE(module->is_training());
  net.eval();
  for (const auto& [name, module] : net.named_modules()) {
    INFO(name);
    REQUIRE_FALSE(module->is_training());
  }
  net.find_module("blocks").train();
  REQUIRE_FALSE(net.is_training());
  REQUIRE(net.find_module("blocks.1.fc").is_training());
  REQUIRE_FALSE(net.find_module("head.1").is_training());
  net.train(true);
  for (const auto& [name, module] : net.named_modules()) REQUIRE(module->is_training());
}

TEST_CASE("zero_grad zeroes every parameter's gradient in place, or drops it", "[nn][module]") {
  Net<double> net;
  randomise(net, 3);
  const Tensor<double> x = cct::testing::random_constant({4, 3}, 11);
  Tensor<double> out = net.forward(x);
  out.backward(Tensor<double>::ones(out.shape()));
  for (const auto& [name, tensor] : net.named_parameters()) {
    INFO(name);
    if (name == "embed.table") {
      REQUIRE_FALSE(tensor.grad().defined());  // frozen: no gradient
      continue;
    }
    REQUIRE(tensor.grad().defined());
    double norm = 0;
    for (double g : tensor.grad().to_vector()) norm += std::abs(g);
    REQUIRE(norm > 0);
  }
  const double* buffer_before = net.parameter("scale").grad().data();
  net.zero_grad();
  for (const auto& tensor : net.trainable_parameters())
    for (double g : tensor.grad().to_vector()) REQUIRE(g == 0.0);
  REQUIRE(net.parameter("scale").grad().data() == buffer_before);  // kept, so the next backward reuses it

  net.zero_grad(/*set_to_none=*/true);
  for (const auto& tensor : net.parameters()) REQUIRE_FALSE(tensor.grad().defined());
}

// ---- registration errors --------------------------------------------------------------------------

TEST_CASE("registration rejects invalid and duplicate names with clear errors", "[nn][module]") {
  Module<float> m;
  m.register_parameter("w", Tensor<float>::ones({2}));
  m.register_buffer("b", Tensor<float>::zeros({2}));
  m.register_module("c", std::make_shared<Module<float>>());

  REQUIRE_THROWS_WITH(m.register_parameter("", Tensor<float>::ones({1})), Catch::Contains("name is empty"));
  REQUIRE_THROWS_WITH(m.register_parameter("a.b", Tensor<float>::ones({1})),
                      Catch::Contains("'a.b'") && Catch::Contains("may not contain '.'"));
  REQUIRE_THROWS_WITH(m.register_buffer("x.y", Tensor<float>::ones({1})), Catch::Contains("may not contain '.'"));
  REQUIRE_THROWS_WITH(m.register_module("", std::make_shared<Module<float>>()), Catch::Contains("name is empty"));
  // A name is unique across parameters, buffers and children.
  REQUIRE_THROWS_WITH(m.register_parameter("w", Tensor<float>::ones({1})),
                      Catch::Contains("'w'") && Catch::Contains("already used by a parameter"));
  REQUIRE_THROWS_WITH(m.register_parameter("b", Tensor<float>::ones({1})), Catch::Contains("already used by a buffer"));
  REQUIRE_THROWS_WITH(m.register_buffer("c", Tensor<float>::ones({1})), Catch::Contains("already used by a child module"));
  REQUIRE_THROWS_WITH(m.register_module("w", std::make_shared<Module<float>>()),
                      Catch::Contains("already used by a parameter"));

  REQUIRE_THROWS_WITH(m.register_parameter("u", Tensor<float>()), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(m.register_module("n", std::shared_ptr<Module<float>>()), Catch::Contains("null"));
  // A computed tensor is not a parameter; a trained tensor is not a buffer.
  Tensor<float> leaf = Tensor<float>::ones({2});
  leaf.requires_grad_();
  REQUIRE_THROWS_WITH(m.register_parameter("p", leaf * 2.0f), Catch::Contains("leaf"));
  REQUIRE_THROWS_WITH(m.register_buffer("q", leaf), Catch::Contains("must not require grad"));
  // Cycles.
  auto parent = std::make_shared<Module<float>>();
  auto kid = parent->register_module("kid", std::make_shared<Module<float>>());
  REQUIRE_THROWS_WITH(kid->register_module("up", parent), Catch::Contains("cycle"));
  REQUIRE_THROWS_WITH(parent->register_module("self", parent), Catch::Contains("cycle"));
  // Failed registrations leave nothing behind.
  REQUIRE(names_of(m.named_parameters()) == std::vector<std::string>{"w"});
  REQUIRE(names_of(m.named_children()) == std::vector<std::string>{"c"});
}

TEST_CASE("register_parameter marks trainable tensors and returns a stable reference", "[nn][module]") {
  Module<double> m;
  Tensor<double>& first = m.register_parameter("first", Tensor<double>::ones({2}));
  for (int i = 0; i < 100; ++i) m.register_parameter("p" + std::to_string(i), Tensor<double>::ones({1}));
  REQUIRE(first.is_same(m.parameter("first")));  // still valid after many registrations
  REQUIRE(first.requires_grad());
  Tensor<double> was_trainable = Tensor<double>::ones({2});
  was_trainable.requires_grad_();
  REQUIRE_FALSE(m.register_parameter("frozen", was_trainable, false).requires_grad());
}

// ---- lookups --------------------------------------------------------------------------------------

TEST_CASE("lookups by name and by dotted path, with errors naming what is missing", "[nn][module]") {
  Net<float> net;
  REQUIRE(net.parameter("scale").shape() == Shape{3});
  REQUIRE(net.buffer("running").shape() == Shape{2});
  REQUIRE(net.child("head")->type_name() == "Sequential");
  REQUIRE(net.child_as<Sequential<float>>("head")->size() == 3);
  REQUIRE(net.has_parameter("scale"));
  REQUIRE_FALSE(net.has_parameter("embed"));
  REQUIRE(net.has_buffer("scratch"));
  REQUIRE(net.has_child("blocks"));

  REQUIRE(net.find_parameter("blocks.1.fc.bias").is_same(net.find_module("blocks.1.fc").parameter("bias")));
  REQUIRE(net.find_parameter("scale").is_same(net.parameter("scale")));
  REQUIRE(net.find_buffer("blocks.0.count").shape() == Shape{1});
  REQUIRE(&net.find_module("") == &net);
  const Net<float>& const_net = net;
  REQUIRE(const_net.find_parameter("head.2.weight").is_same(net.find_module("head.2").parameter("weight")));
  REQUIRE(const_net.find_module("blocks.0").type_name() == "Block");
  REQUIRE(const_net.named_modules().size() == 11);
  REQUIRE(net.find_module("head.2").type_name() == "Scale");

  REQUIRE_THROWS_WITH(net.parameter("nope"), Catch::Contains("no parameter 'nope'") && Catch::Contains("scale"));
  REQUIRE_THROWS_WITH(net.parameter("blocks.0.gamma"), Catch::Contains("find_parameter"));
  REQUIRE_THROWS_WITH(net.buffer("nope"), Catch::Contains("no buffer 'nope'") && Catch::Contains("running, scratch"));
  REQUIRE_THROWS_WITH(net.child("nope"), Catch::Contains("no child module 'nope'") &&
                                             Catch::Contains("embed, blocks, head"));
  REQUIRE_THROWS_WITH(net.child_as<Sequential<float>>("embed"),
                      Catch::Contains("'embed' is a FrozenTable"));
  REQUIRE_THROWS_WITH(net.find_parameter("blocks.7.fc.weight"),
                      Catch::Contains("'blocks' (ModuleList) has no child '7'") && Catch::Contains("0, 1"));
  REQUIRE_THROWS_WITH(net.find_parameter("blocks.0.fc.scale"),
                      Catch::Contains("'blocks.0.fc' (Affine) has parameters: weight, bias"));
  REQUIRE_THROWS_WITH(net.find_parameter("blocks..fc.weight"), Catch::Contains("empty segment"));
  REQUIRE_THROWS_WITH(net.find_buffer("head.0.count"), Catch::Contains("has buffers: none"));
}

TEST_CASE("ModuleList and Sequential index, iterate and cast with clear errors", "[nn][containers]") {
  ModuleList<float> list;
  auto block = list.push_back(std::make_shared<Block<float>>());
  list.push_back(std::make_shared<cct::nn::ReLU<float>>());
  REQUIRE(list.size() == 2);
  REQUIRE(list[0] == block);
  REQUIRE(list.at<Block<float>>(0) == block);
  REQUIRE(list.at<UnaryModule<float>>(1) != nullptr);
  REQUIRE_THROWS_WITH(list.at<Block<float>>(1), Catch::Contains("element 1 is a ReLU"));
  REQUIRE_THROWS_WITH(list[2], Catch::Contains("index 2 is out of range for 2"));
  REQUIRE_THROWS_WITH(list.at<Block<float>>(-1), Catch::Contains("out of range"));
  int count = 0;
  for (const auto& module : list) count += module != nullptr;
  REQUIRE(count == 2);
  REQUIRE(names_of(list.named_children()) == std::vector<std::string>{"0", "1"});

  Sequential<float> seq({std::make_shared<cct::nn::Identity<float>>(), std::make_shared<cct::nn::ReLU<float>>()});
  REQUIRE(seq.size() == 2);
  REQUIRE(seq[1]->type_name() == "ReLU");
  REQUIRE_THROWS_WITH(seq[5], Catch::Contains("index 5 is out of range"));
  REQUIRE(names_of(seq.named_children()) == std::vector<std::string>{"0", "1"});
}

// ---- loading --------------------------------------------------------------------------------------

TEST_CASE("load_state_dict copies every tensor into the existing storage", "[nn][module][load]") {
  Net<float> source, target;
  randomise(source, 1);
  randomise(target, 2);
  source.buffer("running").fill_(7.0f);
  const Tensor<float> x = Tensor<float>::ones({4, 3});
  target(x).backward(Tensor<float>::ones({4, 3}));  // gives the parameters gradient buffers
  const std::vector<float> scale_grad = target.parameter("scale").grad().to_vector();
  const float* scale_storage = target.parameter("scale").data();

  NamedTensors<float> state = source.state_dict();
  std::reverse(state.begin(), state.end());  // matched by name, not position
  const auto report = target.load_state_dict(state);
  REQUIRE(report.complete());
  REQUIRE(report.loaded == 14);
  const NamedTensors<float> loaded = target.state_dict();
  const NamedTensors<float> expected = source.state_dict();
  REQUIRE(names_of(loaded) == names_of(expected));
  for (size_t i = 0; i < loaded.size(); ++i) {
    INFO(loaded[i].first);
    REQUIRE(loaded[i].second.to_vector() == expected[i].second.to_vector());
  }
  // In place: same storage, trainability and gradient buffers untouched, the source not aliased.
  REQUIRE(target.parameter("scale").data() == scale_storage);
  REQUIRE(target.parameter("scale").requires_grad());
  REQUIRE_FALSE(target.find_parameter("embed.table").requires_grad());
  REQUIRE(target.parameter("scale").grad().to_vector() == scale_grad);
  REQUIRE_FALSE(target.parameter("scale").shares_storage(source.parameter("scale")));
  // The non-persistent buffer is not part of the state.
  REQUIRE(target.buffer("scratch").to_vector() == std::vector<float>{0, 0});
}

TEST_CASE("strict load_state_dict names each missing, unexpected and mismatched tensor and loads nothing",
          "[nn][module][load]") {
  Net<float> source, target;
  randomise(source, 1);
  randomise(target, 2);
  const std::vector<float> before = target.parameter("scale").to_vector();

  SECTION("missing") {
    NamedTensors<float> state = source.state_dict();
    state.erase(state.begin() + 5);  // blocks.0.fc.weight
    REQUIRE_THROWS_WITH(target.load_state_dict(state),
                        Catch::Contains("missing from the state dict: 'blocks.0.fc.weight'") &&
                            Catch::Contains("nothing was loaded"));
  }
  SECTION("unexpected") {
    NamedTensors<float> state = source.state_dict();
    state.emplace_back("blocks.2.gamma", Tensor<float>::ones({3}));
    REQUIRE_THROWS_WITH(target.load_state_dict(state), Catch::Contains("unexpected in the state dict: 'blocks.2.gamma'"));
  }
  SECTION("wrong shape") {
    NamedTensors<float> state = source.state_dict();
    state[11].second = Tensor<float>::ones({4});  // head.0.weight
    REQUIRE_THROWS_WITH(target.load_state_dict(state),
                        Catch::Contains("shape mismatch for 'head.0.weight': the module has (3,), the state dict has (4,)"));
  }
  SECTION("all three at once, one message") {
    NamedTensors<float> state = source.state_dict();
    state[11].second = Tensor<float>::ones({2, 2});
    state.erase(state.begin() + 2);  // embed.table (a frozen parameter is still required)
    state.emplace_back("extra", Tensor<float>::ones({1}));
    REQUIRE_THROWS_WITH(target.load_state_dict(state),
                        Catch::Contains("'embed.table'") && Catch::Contains("'extra'") &&
                            Catch::Contains("'head.0.weight': the module has (3,), the state dict has (2, 2)"));
  }
  SECTION("duplicate key") {
    NamedTensors<float> state = source.state_dict();
    state.push_back(state[0]);
    REQUIRE_THROWS_WITH(target.load_state_dict(state, false), Catch::Contains("'scale' appears more than once"));
  }
  REQUIRE(target.parameter("scale").to_vector() == before);  // nothing copied on failure
}

TEST_CASE("non-strict load_state_dict loads what matches and reports what it skipped", "[nn][module][load]") {
  Net<float> source, target;
  randomise(source, 1);
  randomise(target, 2);
  const std::vector<float> head_before = target.find_parameter("head.0.weight").to_vector();
  const std::vector<float> gamma_before = target.find_parameter("blocks.1.gamma").to_vector();

  NamedTensors<float> state = source.state_dict();
  state[11].second = Tensor<float>::ones({5});  // head.0.weight: skipped
  state.erase(state.begin() + 7);              // blocks.1.gamma: missing
  state.emplace_back("classifier.fc.weight", Tensor<float>::ones({2}));
  const auto report = target.load_state_dict(state, /*strict=*/false);

  REQUIRE_FALSE(report.complete());
  REQUIRE(report.missing_keys == std::vector<std::string>{"blocks.1.gamma"});
  REQUIRE(report.unexpected_keys == std::vector<std::string>{"classifier.fc.weight"});
  REQUIRE(report.mismatched.size() == 1);
  REQUIRE(report.mismatched[0].name == "head.0.weight");
  REQUIRE(report.mismatched[0].expected == Shape{3});
  REQUIRE(report.mismatched[0].got == Shape{5});
  REQUIRE(report.loaded == 12);
  REQUIRE(target.find_parameter("head.0.weight").to_vector() == head_before);
  REQUIRE(target.find_parameter("blocks.1.gamma").to_vector() == gamma_before);
  REQUIRE(target.find_parameter("blocks.0.gamma").to_vector() == source.find_parameter("blocks.0.gamma").to_vector());
  REQUIRE(target.find_parameter("embed.table").to_vector() == source.find_parameter("embed.table").to_vector());
  REQUIRE(tensor_named(target.state_dict(), "running").to_vector() == source.buffer("running").to_vector());
}

// ---- summaries and traversal ----------------------------------------------------------------------

TEST_CASE("repr prints the tree as PyTorch does; apply visits children before parents", "[nn][module]") {
  Net<float> net;
  const std::string expected =
      "Net(\n"
      "  (embed): FrozenTable()\n"
      "  (blocks): ModuleList(\n"
      "    (0): Block(\n"
      "      (fc): Affine(features=3)\n"
      "    )\n"
      "    (1): Block(\n"
      "      (fc): Affine(features=3)\n"
      "    )\n"
      "  )\n"
      "  (head): Sequential(\n"
      "    (0): Affine(features=3)\n"
      "    (1): GELU()\n"
      "    (2): Scale()\n"
      "  )\n"
      ")";
  REQUIRE(net.repr() == expected);

  std::vector<std::string> order;
  net.apply([&](Module<float>& m) { order.push_back(m.type_name()); });
  // PyTorch's Module.apply order for the same tree.
  REQUIRE(order == std::vector<std::string>{"FrozenTable", "Affine", "Block", "Affine", "Block", "ModuleList",
                                            "Affine", "GELU", "Scale", "Sequential", "Net"});
}

// ---- forward values and gradients -----------------------------------------------------------------

TEST_CASE("containers and activation modules compute the expected values", "[nn][containers]") {
  // Scale by (2, -1) then ReLU: x·w = [[2, -2], [6, -4]] → [[2, 0], [6, 0]].
  Sequential<float> seq;
  seq.push_back(std::make_shared<Scale<float>>(Tensor<float>::from_vector({2, -1})));
  seq.push_back(std::make_shared<cct::nn::ReLU<float>>());
  const auto x = Tensor<float>::from_vector({1, 2, 3, 4}, {2, 2});
  REQUIRE(seq(x).to_vector() == std::vector<float>{2, 0, 6, 0});

  cct::nn::GELU<double> gelu;
  const auto g = gelu(Tensor<double>::from_vector({-1.0, 0.0, 1.0}));
  REQUIRE(g.data()[0] == Approx(-0.15865525393145707).epsilon(1e-12));
  REQUIRE(g.data()[1] == 0.0);
  REQUIRE(g.data()[2] == Approx(0.8413447460685429).epsilon(1e-12));

  cct::nn::Identity<float> identity;
  REQUIRE(identity(x).is_same(x));
  Sequential<float> empty;
  REQUIRE(empty(x).to_vector() == x.to_vector());
}

TEST_CASE("a model's forward runs its children in order (values by hand)", "[nn][module]") {
  Net<double> net;
  {
    cct::NoGradGuard no_grad;
    net.parameter("scale").copy_(Tensor<double>::from_vector({1, 2, 3}));
    init::constant_(net.find_parameter("blocks.0.gamma"), 2.0);
    net.find_parameter("blocks.1.fc.bias").copy_(Tensor<double>::from_vector({1, 0, -1}));
    net.find_parameter("head.2.weight").copy_(Tensor<double>::from_vector({1, 1, 10}));
  }
  // Row (1, 0, -1): ·scale + 0.5 = (1.5, 0.5, -2.5); block 0 (×2) = (3, 1, -5); block 1 (+bias) =
  // (4, 1, -6); GELU then ×(1, 1, 10). A zero row: (0.5, 0.5, 0.5) → (1, 1, 1) → (2, 1, 0).
  Tensor<double> x = Tensor<double>::zeros({4, 3});
  x(0, 0) = 1;
  x(0, 2) = -1;
  const Tensor<double> out = net(x);
  const std::vector<double> expected_row0{3.9998733150326675, 0.841344746068543, 10 * -5.919525869479969e-09};
  const std::vector<double> expected_zero_row{1.9544997361036416, 0.841344746068543, 0.0};
  for (int64_t j = 0; j < 3; ++j) {
    REQUIRE(out(0, j) == Approx(expected_row0[j]).epsilon(1e-12).margin(1e-15));
    for (int64_t i = 1; i < 4; ++i) REQUIRE(out(i, j) == Approx(expected_zero_row[j]).epsilon(1e-12));
  }
}

TEST_CASE("gradients flow through a Sequential into its parameter (gradcheck, double)", "[nn][containers][grad]") {
  // The module is built inside the function from gradcheck's inputs, so the parameter is the leaf
  // being checked: f(x, w) = GELU(x·w) through Sequential(Scale(w), GELU).
  auto through_sequential = [](const std::vector<Tensor<double>>& in) {
    Sequential<double> seq;
    seq.push_back(std::make_shared<Scale<double>>(in[1]));
    seq.push_back(std::make_shared<cct::nn::GELU<double>>());
    return seq(in[0]);
  };
  // Odd sizes; the weight broadcasts over the leading dims.
  cct::testing::check_gradients(through_sequential, {cct::testing::random_leaf({3, 5, 7}, 1, -2, 2),
                                                     cct::testing::random_leaf({7}, 2, -1.5, 1.5)});
  cct::testing::check_gradients(through_sequential, {cct::testing::random_constant({2, 3}, 3),
                                                     cct::testing::random_leaf({1, 3}, 4)});
  // Hand value: d/dw Σ GELU(x·w) = Σ over rows of x·GELU'(x·w); at w = 1 for x = (1; -1) that is
  // GELU'(1) − GELU'(−1) = (Φ(1) + φ(1)) − (Φ(−1) − φ(−1)) = 2Φ(1) − 1 + 2φ(1).
  auto scale = std::make_shared<Scale<double>>(Tensor<double>::ones({1}));
  Sequential<double> seq;
  seq.push_back(scale);
  seq.push_back(std::make_shared<cct::nn::GELU<double>>());
  seq(Tensor<double>::from_vector({1.0, -1.0}, {2, 1})).backward(Tensor<double>::ones({2, 1}));
  const double phi1 = std::exp(-0.5) / std::sqrt(2 * kPi);
  const double cdf1 = 0.5 * (1 + std::erf(1 / std::sqrt(2.0)));
  REQUIRE(scale->parameter("weight").grad().item() == Approx(2 * cdf1 - 1 + 2 * phi1).epsilon(1e-12));
}

TEST_CASE("every trainable parameter of a module tree gets the finite-difference gradient", "[nn][module][grad]") {
  // Perturbs the module's own parameters in place, so this checks the gradients reaching the tensors
  // an optimiser would update, through ModuleList iteration, nested children and the Sequential head.
  Net<double> net;
  randomise(net, 5);
  const Tensor<double> x = cct::testing::random_constant({4, 3}, 6);
  const Tensor<double> weights = cct::testing::random_constant({4, 3}, 7, 0.5, 1.5);
  auto loss = [&] {
    const Tensor<double> out = net(x);
    double sum = 0;
    for (int64_t i = 0; i < out.numel(); ++i) sum += out.data()[i] * weights.data()[i];
    return sum;
  };
  net.zero_grad(true);
  net(x).backward(weights);
  cct::NoGradGuard no_grad;
  const double step = 1e-6;
  for (const auto& [name, tensor] : net.named_parameters()) {
    if (!tensor.requires_grad()) continue;
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      const double saved = tensor.data()[i];
      tensor.data()[i] = saved + step;
      const double plus = loss();
      tensor.data()[i] = saved - step;
      const double minus = loss();
      tensor.data()[i] = saved;
      const double numeric = (plus - minus) / (2 * step);
      INFO(name << " element " << i);
      REQUIRE(tensor.grad().data()[i] == Approx(numeric).margin(1e-6).epsilon(1e-5));
    }
  }
}

// ---- initialisers ---------------------------------------------------------------------------------

TEST_CASE("fan_in and fan_out follow PyTorch's definition", "[nn][init]") {
  REQUIRE(init::fan_in({10, 20}) == 20);
  REQUIRE(init::fan_out({10, 20}) == 10);
  REQUIRE(init::fan_in({64, 3, 3, 3}) == 27);
  REQUIRE(init::fan_out({64, 3, 3, 3}) == 576);
  REQUIRE(init::fan_in({256, 1, 4, 300}) == 1200);
  REQUIRE(init::fan_in({8, 5, 7}) == 35);
  REQUIRE_THROWS_AS(init::fan_in({5}), cct::ShapeError);
  REQUIRE_THROWS_WITH(init::fan_out({}), Catch::Contains("rank >= 2"));
  REQUIRE(init::leaky_relu_gain() == Approx(std::sqrt(2.0)));
  REQUIRE(init::leaky_relu_gain(std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));
}

TEST_CASE("constant initialisers work on parameters that require grad", "[nn][init]") {
  Tensor<float> t = Tensor<float>::empty({2, 3});
  t.requires_grad_();
  init::constant_(t, 0.25);
  for (float v : t.to_vector()) REQUIRE(v == 0.25f);
  init::zeros_(t);
  for (float v : t.to_vector()) REQUIRE(v == 0.0f);
  init::ones_(t);
  for (float v : t.to_vector()) REQUIRE(v == 1.0f);
  REQUIRE(cct::is_grad_enabled());  // the guard is scoped
  Generator gen(1);
  REQUIRE_NOTHROW(init::normal_(t, 0, 1, gen));  // random ones too
}

TEST_CASE("normal_ and uniform_ have the requested statistics", "[nn][init]") {
  Generator gen(2024);
  auto t = Tensor<float>::empty({100000});
  init::normal_(t, 0.3, 0.02, gen);
  REQUIRE(sample_mean(as_doubles(t)) == Approx(0.3).margin(0.02 * 0.02));  // ~6 standard errors
  REQUIRE(sample_std(as_doubles(t)) == Approx(0.02).epsilon(0.02));

  init::uniform_(t, -0.5, 1.5, gen);
  const auto values = as_doubles(t);
  REQUIRE(*std::min_element(values.begin(), values.end()) >= -0.5);
  REQUIRE(*std::max_element(values.begin(), values.end()) < 1.5);
  REQUIRE(*std::min_element(values.begin(), values.end()) < -0.49);  // fills the whole range
  REQUIRE(*std::max_element(values.begin(), values.end()) > 1.49);
  REQUIRE(sample_mean(values) == Approx(0.5).margin(0.02));
  REQUIRE(sample_std(values) == Approx(2.0 / std::sqrt(12.0)).epsilon(0.02));

  REQUIRE_THROWS_WITH(init::normal_(t, 0, -1, gen), Catch::Contains("std >= 0"));
  REQUIRE_THROWS_WITH(init::uniform_(t, 1, 0, gen), Catch::Contains("low <= high"));
}

TEST_CASE("trunc_normal_ respects its bounds and has the truncated distribution's moments", "[nn][init]") {
  Generator gen(7);
  auto t = Tensor<double>::empty({100000});
  const double mean = 0.2, std = 1.0, a = -0.5, b = 1.0;
  init::trunc_normal_(t, mean, std, a, b, gen);
  const auto values = as_doubles(t);
  REQUIRE(*std::min_element(values.begin(), values.end()) >= a);
  REQUIRE(*std::max_element(values.begin(), values.end()) <= b);
  // Moments of N(μ, σ²) truncated to [a, b], with α = (a − μ)/σ, β = (b − μ)/σ, Z = Φ(β) − Φ(α):
  // mean μ + σ(φ(α) − φ(β))/Z; variance σ²(1 + (αφ(α) − βφ(β))/Z − ((φ(α) − φ(β))/Z)²).
  auto pdf = [](double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * kPi); };
  auto cdf = [](double z) { return 0.5 * (1 + std::erf(z / std::sqrt(2.0))); };
  const double alpha = (a - mean) / std, beta = (b - mean) / std;
  const double z = cdf(beta) - cdf(alpha);
  const double shift = (pdf(alpha) - pdf(beta)) / z;
  const double expected_std = std * std::sqrt(1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - shift * shift);
  REQUIRE(sample_mean(values) == Approx(mean + std * shift).margin(0.005));
  REQUIRE(sample_std(values) == Approx(expected_std).epsilon(0.01));

  // Float values are checked after rounding, so they respect bounds that are not representable.
  auto f = Tensor<float>::empty({20000});
  init::trunc_normal_(f, 0.0, 0.3, -0.1, 0.1, gen);
  for (float v : f.to_vector()) REQUIRE((static_cast<double>(v) >= -0.1 && static_cast<double>(v) <= 0.1));

  REQUIRE_THROWS_WITH(init::trunc_normal_(t, 0, 1, 1, -1, gen), Catch::Contains("a < b"));
  REQUIRE_THROWS_WITH(init::trunc_normal_(t, 0, 1, 5, 6, gen), Catch::Contains("too slow"));
  init::trunc_normal_(t, 0.5, 0.0, 0, 1, gen);
  REQUIRE(t.data()[17] == 0.5);
}

TEST_CASE("trunc_normal_ equals normal_ when the bounds never bite (the reference's Linear init)", "[nn][init]") {
  Generator g1(99), g2(99);
  auto truncated = Tensor<float>::empty({3, 128, 128});
  auto plain = Tensor<float>::empty({3, 128, 128});
  init::trunc_normal_(truncated, 0.0, 0.02, -2.0, 2.0, g1);
  init::normal_(plain, 0.0, 0.02, g2);
  REQUIRE(truncated.to_vector() == plain.to_vector());
  REQUIRE(g1.counter() == g2.counter());
}

TEST_CASE("SkipInitGuard: random initialisers draw nothing inside it, and work again after it", "[nn][init]") {
  Generator gen(5);
  auto weight = Tensor<float>::zeros({16, 8});
  {
    init::SkipInitGuard skip;
    REQUIRE(init::is_init_skipped());
    {
      init::SkipInitGuard nested;
    }
    REQUIRE(init::is_init_skipped());  // the inner guard restores the outer one's state
    init::trunc_normal_(weight, 0.0, 0.02, -2.0, 2.0, gen);
    init::kaiming_normal_(weight, gen);
    init::xavier_uniform_(weight, gen);
    REQUIRE(gen.counter() == 0);
    for (float v : weight.to_vector()) REQUIRE(v == 0.0f);
    init::constant_(weight, 0.5);  // constants still apply
    // Bad arguments are still refused.
    REQUIRE_THROWS_WITH(init::normal_(weight, 0.0, -1.0, gen), Catch::Contains("std >= 0"));
  }
  REQUIRE_FALSE(init::is_init_skipped());
  for (float v : weight.to_vector()) REQUIRE(v == 0.5f);
  init::normal_(weight, 0.0, 1.0, gen);
  REQUIRE(gen.counter() == 2 * 16 * 8);
  REQUIRE(sample_std(as_doubles(weight)) > 0.5);
}

TEST_CASE("Kaiming and Xavier initialisers scale by the fans", "[nn][init]") {
  Generator gen(31);
  // The reference's conv init: std = sqrt(2 / fan_in), fan_in = 3·3·3 = 27. One (64, 3, 3, 3) weight
  // has 1728 values, so its sample std scatters by about 1/sqrt(2·1728) = 1.7%: a 3% bound would be
  // under 2 standard errors. Pool ten independently initialised weights (0.54%, so 3% is > 5 of them).
  const double expected = std::sqrt(2.0 / 27.0);
  std::vector<double> pooled;
  for (int draw = 0; draw < 10; ++draw) {
    auto conv = Tensor<float>::empty({64, 3, 3, 3});
    init::kaiming_normal_(conv, gen);
    const auto values = as_doubles(conv);
    pooled.insert(pooled.end(), values.begin(), values.end());
  }
  REQUIRE(sample_std(pooled) == Approx(expected).epsilon(0.03));
  REQUIRE(sample_mean(pooled) == Approx(0.0).margin(0.05 * expected));
  auto big = Tensor<float>::empty({2048, 3, 3, 3});
  init::kaiming_normal_(big, gen);
  REQUIRE(sample_std(as_doubles(big)) == Approx(expected).epsilon(0.01));
  // fan_out mode and a leaky slope: std = sqrt(2 / (1 + 0.2²)) / sqrt(fan_out), fan_out = 2048·3·3.
  init::kaiming_normal_(big, gen, 0.2, init::FanMode::fan_out);
  REQUIRE(sample_std(as_doubles(big)) == Approx(std::sqrt(2.0 / 1.04) / std::sqrt(2048.0 * 9)).epsilon(0.01));

  // Kaiming uniform with slope sqrt(5) (PyTorch's nn.Linear default): bound = 1/sqrt(fan_in).
  auto linear = Tensor<double>::empty({500, 100});
  init::kaiming_uniform_(linear, gen, std::sqrt(5.0));
  auto values = as_doubles(linear);
  REQUIRE(*std::max_element(values.begin(), values.end()) <= 0.1);
  REQUIRE(*std::max_element(values.begin(), values.end()) > 0.099);
  REQUIRE(*std::min_element(values.begin(), values.end()) >= -0.1);
  // Xavier uniform: bound = sqrt(6 / (100 + 500)) = 0.1 as well.
  init::xavier_uniform_(linear, gen);
  values = as_doubles(linear);
  REQUIRE(*std::max_element(values.begin(), values.end()) <= 0.1);
  REQUIRE(*std::min_element(values.begin(), values.end()) < -0.099);
  REQUIRE(sample_std(values) == Approx(0.1 / std::sqrt(3.0)).epsilon(0.02));

  auto vector = Tensor<float>::empty({5});
  REQUIRE_THROWS_AS(init::kaiming_normal_(vector, gen), cct::ShapeError);
  REQUIRE_THROWS_AS(init::xavier_uniform_(vector, gen), cct::ShapeError);
}

TEST_CASE("initialisers are deterministic given the generator, whatever the thread count", "[nn][init]") {
  auto run = [](uint64_t seed, int threads) {
    const int saved = cct::num_threads();
    cct::set_num_threads(threads);
    Generator gen(seed);
    auto a = Tensor<float>::empty({70000});
    auto b = Tensor<float>::empty({64, 3, 3, 3});
    auto c = Tensor<float>::empty({40000});
    auto d = Tensor<float>::empty({300});
    init::normal_(a, 0, 1, gen);
    init::kaiming_normal_(b, gen);
    init::trunc_normal_(c, 0, 1, -0.3, 2.0, gen);  // many redraws
    init::uniform_(d, -1, 1, gen);
    std::vector<float> all;
    for (const auto* t : {&a, &b, &c, &d}) all.insert(all.end(), t->begin(), t->end());
    cct::set_num_threads(saved);
    return std::make_pair(all, gen.counter());
  };
  const auto first = run(5, 2);
  const auto again = run(5, 1);
  const auto other = run(6, 2);
  REQUIRE(first.first == again.first);
  REQUIRE(first.second == again.second);
  REQUIRE(first.first != other.first);
}

// ---- LayerScale: the layer docs/adding_a_layer.md adds, with the tests it shows -------------------

TEST_CASE("LayerScale has one parameter named gamma, also inside a container", "[nn][layer_scale]") {
  nn::LayerScale<float> scale(4, 0.1);
  const auto named = scale.named_parameters();
  REQUIRE(named.size() == 1);
  REQUIRE(named[0].first == "gamma");
  REQUIRE(named[0].second.shape() == Shape{4});
  REQUIRE(named[0].second.requires_grad());
  for (float v : scale.gamma.to_vector()) REQUIRE(v == 0.1f);

  nn::Sequential<float> block;
  block.push_back(std::make_shared<nn::Linear<float>>(2, 4));
  block.push_back(std::make_shared<nn::LayerScale<float>>(4));
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : block.state_dict()) keys.push_back(key);
  REQUIRE(keys == std::vector<std::string>{"0.weight", "0.bias", "1.gamma"});
  REQUIRE(scale.repr() == "LayerScale(dim=4, init_value=0.100000)");
}

TEST_CASE("LayerScale forward values", "[nn][layer_scale]") {
  nn::LayerScale<double> scale(3);
  std::copy_n(std::vector<double>{1.0, -2.0, 0.5}.begin(), 3, scale.gamma.data());
  const auto x = Tensor<double>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(scale.forward(x).to_vector() == std::vector<double>{1, -4, 1.5, 4, -10, 3});
}

TEST_CASE("gradients of LayerScale match finite differences", "[nn][layer_scale][gradcheck]") {
  for (const Shape& shape : std::vector<Shape>{{3}, {2, 3}, {2, 5, 3}}) {  // incl. broadcasting over 2 dims
    INFO(cct::shape_str(shape));
    check_gradients([](const Inputs& in) { return nn::layer_scale(in[0], in[1]); },
                    {random_leaf(shape, 1), random_leaf({3}, 2)});
  }
  // Through the module, backward reaches the registered parameter: ∂Σy/∂γ_c = Σ_rows x[row, c].
  nn::LayerScale<double> scale(3, 0.5);
  const auto x = Tensor<double>::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  cct::sum(scale.forward(x)).backward();
  REQUIRE(scale.named_parameters()[0].second.grad().to_vector() == std::vector<double>{5, 7, 9});
  // And the module's gradient with respect to its input.
  check_gradients([&](const Inputs& in) { return scale.forward(in[0]); }, {random_leaf({4, 3}, 3)});
}

TEST_CASE("LayerScale errors name the layer and the shapes", "[nn][layer_scale]") {
  nn::LayerScale<float> scale(3);
  REQUIRE_THROWS_WITH(scale.forward(Tensor<float>::ones({2, 4})),
                      Catch::Contains("layer_scale") && Catch::Contains("(2, 4)") && Catch::Contains("(3,)"));
  REQUIRE_THROWS_WITH(nn::LayerScale<float>(0), Catch::Contains("positive"));
}

TEST_CASE("LayerScale sits in a Sequential, as docs/adding_a_layer.md shows", "[nn][layer_scale]") {
  nn::Sequential<float> branch;
  branch.push_back(std::make_shared<nn::Linear<float>>(256, 256));
  branch.push_back(std::make_shared<nn::LayerScale<float>>(256, 1e-5));
  // state dict: 0.weight, 0.bias, 1.gamma
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : branch.state_dict()) keys.push_back(key);
  REQUIRE(keys == std::vector<std::string>{"0.weight", "0.bias", "1.gamma"});
  REQUIRE(branch.forward(Tensor<float>::ones({2, 256})).shape() == Shape{2, 256});
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  REQUIRE(file.good());
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Lines without their indentation and without blank lines, so a snippet matches the code it was
// copied from at whatever depth it sits there.
std::string without_indentation(const std::string& text) {
  std::istringstream lines(text);
  std::string line, out;
  while (std::getline(lines, line)) {
    const size_t start = line.find_first_not_of(' ');
    if (start != std::string::npos) out += line.substr(start) + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("docs/adding_a_layer.md shows code that is compiled and tested", "[docs]") {
  const std::string root = CCT_SOURCE_DIR;
  std::string sources;
  for (const char* path : {"include/cct/nn/layer_scale.hpp", "tests/test_nn_module.cpp", "tests/test_summary.cpp",
                           "examples/layer_scale_block.hpp", "examples/custom_variant.cpp"})
    sources += without_indentation(read_text(root + "/" + path));
  const std::string page = read_text(root + "/docs/adding_a_layer.md");
  int snippets = 0;
  for (size_t start = page.find("```cpp\n"); start != std::string::npos; start = page.find("```cpp\n", start)) {
    start += 7;
    const size_t end = page.find("```", start);
    REQUIRE(end != std::string::npos);
    const std::string snippet = page.substr(start, end - start);
    INFO("this snippet of docs/adding_a_layer.md is not in the code it shows:\n" << snippet);
    CHECK(sources.find(without_indentation(snippet)) != std::string::npos);
    ++snippets;
    start = end + 3;
  }
  // The header, its use in a Sequential, five tests, the block's forward, its factory and its use.
  REQUIRE(snippets == 10);
}
