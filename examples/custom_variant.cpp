// custom_variant: two ways to a model of your own, each trained a few AdamW steps on random data, saved,
// and loaded back.
//  (a) Config only: a ModelConfig with other sizes, built by models::create. It is a CCT like every
//      registered model, so models::save_model stores its config with the weights, and the file loads
//      everywhere: models::load_model, `cct_trainer predict/eval`, `model_summary FILE`.
//  (b) A block of your own: LayerScaleBlock (layer_scale_block.hpp) plugged into nn::TransformerClassifier
//      through its block factory, in a model assembled from nn blocks. Its file holds the weights under
//      their names; they load back into the same architecture with io::load_into.
//   ./custom_variant [steps] [output folder]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <cct/cct.hpp>

#include "layer_scale_block.hpp"

using cct::Tensor;
namespace models = cct::models;
namespace nn = cct::nn;

namespace {

// 16 noise images with random labels; each class shifts its images' brightness, which is learnable.
struct ToyData {
  Tensor<float> images;
  Tensor<int64_t> labels;
};
ToyData toy_data(cct::Generator& gen) {
  ToyData data{Tensor<float>::randn({16, 3, 32, 32}, gen), Tensor<int64_t>::empty({16})};
  for (int64_t i = 0; i < 16; ++i) {
    data.labels(i) = gen.randint(10);
    for (int64_t j = 0; j < 3 * 32 * 32; ++j) data.images.data()[i * 3 * 32 * 32 + j] += 0.2f * (data.labels(i) - 4.5f);
  }
  return data;
}

template <class Model>
void train(Model& model, const ToyData& data, int steps) {
  model.train();
  cct::optim::AdamW<float> optimizer(cct::optim::param_groups_no_decay_for_1d(model.named_parameters(), 0.05),
                                     cct::optim::AdamWOptions{/*lr=*/1e-3});
  for (int step = 1; step <= steps; ++step) {
    Tensor<float> loss = cct::cross_entropy(model.forward(data.images), data.labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    std::printf("  step %2d  loss %.4f\n", step, loss.item());
  }
}

// Largest |a − b| between the logits of two models on the same images (eval mode: no dropout).
template <class Model>
float max_logit_difference(Model& a, Model& b, const Tensor<float>& images) {
  cct::NoGradGuard no_grad;
  a.eval();
  b.eval();
  const Tensor<float> la = a.forward(images), lb = b.forward(images);
  float worst = 0;
  for (int64_t i = 0; i < la.numel(); ++i) worst = std::max(worst, std::fabs(la.data()[i] - lb.data()[i]));
  return worst;
}

// (b) A model is a Module whose children are registered: their names prefix the parameter names
// (tokenizer.conv_layers.0.0.weight, classifier.blocks.2.ls1.gamma, ...).
class LayerScaleCCT : public nn::Module<float> {
 public:
  LayerScaleCCT(int64_t num_classes, cct::Generator& gen) {
    // Tokenizer: twice conv 5×5 (stride 1, padding 2) → ReLU → MaxPool2d(3, 2, 1): 32×32 → 8×8 = 64 tokens.
    const nn::TokenizerConfig tokens{/*in_channels=*/3, /*embedding_dim=*/96, /*num_conv_layers=*/2,
                                     /*kernel_size=*/5, /*stride=*/1, /*padding=*/2};
    tokenizer = register_module("tokenizer", std::make_shared<nn::ConvTokenizer<float>>(tokens, gen));
    // Classifier: learnable positional embedding, 3 LayerScale blocks (D 96, 3 heads, MLP 192), SeqPool, fc.
    const nn::ClassifierConfig head{/*seq_pool=*/true, /*embedding_dim=*/96, /*num_layers=*/3, /*num_heads=*/3,
                                    /*mlp_ratio=*/2.0, num_classes, tokenizer->sequence_length(32, 32)};
    classifier = register_module("classifier", std::make_shared<nn::TransformerClassifier<float>>(
                                                   head, gen, layer_scale_blocks<float>(/*init_value=*/0.1)));
  }
  Tensor<float> forward(const Tensor<float>& images) { return classifier->forward(tokenizer->forward(images)); }
  std::string type_name() const override { return "LayerScaleCCT"; }
  // For the model summary: images → tokens → logits.
  nn::LayerDescription describe(const cct::Shape& input, nn::Describer<float>& children) const override {
    return {children.child("classifier", children.child("tokenizer", input))};
  }

  std::shared_ptr<nn::ConvTokenizer<float>> tokenizer;
  std::shared_ptr<nn::TransformerClassifier<float>> classifier;
};

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 10;
  const std::string folder = argc > 2 ? argv[2] : ".";
  try {
    cct::Generator gen(0);
    const ToyData data = toy_data(gen);

    // (a) A config with other sizes: 3 layers of width 96 with 3 heads, MLP ratio 2, a kernel-5 tokenizer.
    models::ModelConfig config = models::cct_config(/*num_layers=*/2, /*kernel_size=*/3, /*num_conv_layers=*/2);
    config.name = "cct_3_5x2_32_d96";  // any name: the file stores the whole config, not just the name
    config.num_layers = 3;
    config.num_heads = 3;
    config.embedding_dim = 96;
    config.mlp_ratio = 2.0;
    config.kernel_size = 5;
    const auto model = models::create(config);
    std::printf("(a) %s: %lld parameters\n", config.name.c_str(), static_cast<long long>(model->num_parameters()));
    train(*model, data, steps);
    const std::string config_path = folder + "/config_variant.safetensors";
    cct::models::save_model(config_path, *model);  // weights + config metadata, written atomically
    const auto restored = cct::models::load_model(config_path);
    const float config_difference = max_logit_difference(*model, *restored, data.images);
    std::printf("saved %s; load_model rebuilt %s, max |Δlogit| %g\n", config_path.c_str(),
                restored->config().name.c_str(), config_difference);

    // (b) Your own block through the factory.
    LayerScaleCCT custom(10, gen);
    std::printf("\n(b) LayerScaleCCT: %lld parameters\n", static_cast<long long>(custom.num_parameters()));
    train(custom, data, steps);
    std::printf("%s", models::summary(custom, {1, 3, 32, 32}, "LayerScaleCCT").c_str());
    const std::string custom_path = folder + "/layer_scale_variant.safetensors";
    cct::io::save_safetensors(custom_path, custom.state_dict());
    cct::Generator other_seed(1);
    LayerScaleCCT reloaded(10, other_seed);  // same architecture, other weights until loaded
    cct::io::load_into(custom_path, reloaded.state_dict());
    const float custom_difference = max_logit_difference(custom, reloaded, data.images);
    std::printf("saved %s (%zu tensors); reloaded into a fresh LayerScaleCCT, max |Δlogit| %g\n", custom_path.c_str(),
                custom.state_dict().size(), custom_difference);

    if (config_difference != 0 || custom_difference != 0) {
      std::fprintf(stderr, "custom_variant: a reloaded model does not reproduce the saved one's logits\n");
      return 1;
    }
  } catch (const cct::Error& error) {
    std::fprintf(stderr, "custom_variant: %s\n", error.what());
    return 1;
  }
  return 0;
}
