// custom_variant: a transformer of your own from cct's blocks: a CCT with a two-layer kernel-5 tokenizer
// and three encoder layers of width 96, trained a few AdamW steps on random data, saved as safetensors.
//   ./custom_variant [steps] [output.safetensors]
#include <cstdio>
#include <cstdlib>

#include <cct/cct.hpp>

using cct::Tensor;
namespace nn = cct::nn;

// A model is a Module whose children are registered: their names prefix the parameter names
// (tokenizer.conv_layers.0.0.weight, classifier.blocks.2.linear1.bias, ...).
class SmallCCT : public nn::Module<float> {
 public:
  SmallCCT(int64_t num_classes, cct::Generator& gen) {
    // Tokenizer: twice conv 5×5 (stride 1, padding 2) → ReLU → MaxPool2d(3, 2, 1): 32×32 → 8×8 = 64 tokens.
    const nn::TokenizerConfig tokens{/*in_channels=*/3, /*embedding_dim=*/96, /*num_conv_layers=*/2,
                                     /*kernel_size=*/5, /*stride=*/1, /*padding=*/2};
    tokenizer = register_module("tokenizer", std::make_shared<nn::ConvTokenizer<float>>(tokens, gen));
    // Classifier: learnable positional embedding, 3 encoder layers (D 96, 3 heads, MLP 192), SeqPool, fc.
    const nn::ClassifierConfig head{/*seq_pool=*/true, /*embedding_dim=*/96, /*num_layers=*/3, /*num_heads=*/3,
                                    /*mlp_ratio=*/2.0, num_classes, tokenizer->sequence_length(32, 32)};
    classifier = register_module("classifier", std::make_shared<nn::TransformerClassifier<float>>(head, gen));
  }
  Tensor<float> forward(const Tensor<float>& images) { return classifier->forward(tokenizer->forward(images)); }
  std::string type_name() const override { return "SmallCCT"; }
  std::shared_ptr<nn::ConvTokenizer<float>> tokenizer;
  std::shared_ptr<nn::TransformerClassifier<float>> classifier;
};

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 15;
  const std::string path = argc > 2 ? argv[2] : "custom_variant.safetensors";
  cct::Generator gen(0);
  SmallCCT model(10, gen);
  std::printf("SmallCCT: %lld parameters\n", static_cast<long long>(model.num_parameters()));
  // 16 noise images with random labels; each class shifts its images' brightness, which is learnable.
  Tensor<float> images = Tensor<float>::randn({16, 3, 32, 32}, gen);
  Tensor<int64_t> labels = Tensor<int64_t>::empty({16});
  for (int64_t i = 0; i < 16; ++i) {
    labels(i) = gen.randint(10);
    for (int64_t j = 0; j < 3 * 32 * 32; ++j) images.data()[i * 3 * 32 * 32 + j] += 0.2f * (labels(i) - 4.5f);
  }
  cct::optim::AdamW<float> optimizer(cct::optim::param_groups_no_decay_for_1d(model.named_parameters(), 0.05),
                                     cct::optim::AdamWOptions{/*lr=*/1e-3});
  for (int step = 1; step <= steps; ++step) {
    Tensor<float> loss = cct::cross_entropy(model.forward(images), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    std::printf("step %2d  loss %.4f\n", step, loss.item());
  }
  cct::io::save_safetensors(path, model.state_dict());
  std::printf("saved %zu tensors to %s\n", model.state_dict().size(), path.c_str());
}
