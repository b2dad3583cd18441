// model_summary: prints a torchinfo-style table (layers, output shapes, parameters, MACs) for
// registered models or for the models stored in checkpoints, computed from the shapes alone (no
// forward pass).
//   ./model_summary cct_7_3x1_32 vit_7_4_32 --batch 8
//   ./model_summary runs/cifar10/best.safetensors
//   ./model_summary --list
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <cct/models/checkpoint.hpp>
#include <cct/models/registry.hpp>
#include <cct/models/summary.hpp>

namespace {

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: model_summary [MODEL_NAME | CHECKPOINT ...] [--batch N] [--list] [--help]\n"
               "\n"
               "Prints, for each model, one row per module (dotted name, type, output\n"
               "shape for a batch of N images, parameters, multiply-accumulates per image) and the totals:\n"
               "parameters, trainable parameters, MACs per image with and without the attention products,\n"
               "and parameter memory.\n"
               "\n"
               "  MODEL_NAME   a registered model, e.g. cct_7_3x1_32, cvt_7_4_32, vit_7_4_32_sine\n"
               "  CHECKPOINT   a .safetensors file saved by cct (cct_trainer, models::save_model): the model it\n"
               "               stores, custom sizes included\n"
               "  --batch N    batch size shown in the output shapes (default 1; MACs stay per image)\n"
               "  --list       print the registered model names and exit\n"
               "  --help       print this text and exit\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> names;
  int64_t batch_size = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_usage(stdout);
      return 0;
    } else if (arg == "--list") {
      for (const auto& name : cct::models::registered_models()) std::printf("%s\n", name.c_str());
      return 0;
    } else if (arg == "--batch") {
      char* end = nullptr;
      batch_size = i + 1 < argc ? std::strtoll(argv[++i], &end, 10) : 0;
      if (end == nullptr || *end != '\0' || batch_size < 1) {
        std::fprintf(stderr, "model_summary: --batch needs a whole number >= 1\n");
        return 2;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "model_summary: unknown option '%s'\n\n", arg.c_str());
      print_usage(stderr);
      return 2;
    } else {
      names.push_back(arg);
    }
  }
  if (names.empty()) {
    print_usage(stderr);
    return 2;
  }

  for (size_t i = 0; i < names.size(); ++i) {
    std::shared_ptr<cct::models::CompactTransformer<float>> model;
    try {
      // An existing file is a checkpoint; anything else must be a registered name (checked before
      // anything is built).
      std::error_code error;
      const bool file_name = names[i].size() > 12 && names[i].compare(names[i].size() - 12, 12, ".safetensors") == 0;
      if (std::filesystem::is_regular_file(names[i], error)) {
        model = cct::models::load_model(names[i]);
      } else if (file_name) {
        std::fprintf(stderr, "model_summary: no checkpoint file '%s'\n", names[i].c_str());
        return 2;
      } else {
        model = cct::models::create<float>(cct::models::make_config(names[i]));
      }
    } catch (const cct::Error& error) {
      std::fprintf(stderr, "model_summary: %s\n", error.what());
      return 2;
    }
    std::printf("%s%s", i ? "\n" : "", cct::models::summary(*model, batch_size).c_str());
  }
  return 0;
}
