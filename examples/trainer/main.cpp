// cct_trainer: train, evaluate and use Compact Transformers on image data, on the CPU.
//
//   cct_trainer train   --data DIR [--model cct_2_3x2_32] [--epochs N] [--out runs/NAME] ...
//   cct_trainer eval    --checkpoint runs/NAME/best.safetensors --data DIR
//   cct_trainer predict --checkpoint runs/NAME/best.safetensors IMAGE... [--top-k 5] [--json]
//                       [--attention OUT.png]
//
// `cct_trainer --help` and `cct_trainer train --help` list every option.
#include <string>

#include <CLI/CLI.hpp>

#include "../common/mpi_job.hpp"
#include "commands.hpp"

namespace {

// Where eval and predict get their model: a cct checkpoint, or weights with reference names + --model.
void add_model_source_options(CLI::App* command, image_trainer::ModelSource& source) {
  command->add_option("--checkpoint", source.checkpoint,
                      "a .safetensors file: written by train, or weights with the reference PyTorch names "
                      "(scripts/convert_checkpoint.py) together with --model")
      ->required();
  command->add_option("--model", source.model,
                      "the registered model a weights-only file holds (model_summary --list); it then gets the "
                      "reference's evaluation preprocessing");
  command->add_option("--classes", source.classes, "class names: cifar10, cifar100, or a file with one name per line");
  command->add_option("--mean", source.mean, "per-channel normalisation mean (overrides the file's or the reference's)")
      ->delimiter(',');
  command->add_option("--std", source.std, "per-channel normalisation std (with --mean)")->delimiter(',');
}

}  // namespace

int main(int argc, char** argv) {
  trainer_cli::MpiJob job(argc, argv);  // under mpirun: one data-parallel job (README, Training on several machines)
  using namespace image_trainer;
  CLI::App app{"cct_trainer: train, evaluate and use Compact Transformers (CCT, CVT, ViT-Lite) on images, on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cct ") + CCT_VERSION_STRING);

  TrainOptions train;
  CLI::App* train_cmd = app.add_subcommand("train", "train a model (progress bar, checkpoints, metrics and plots in --out)");
  train_cmd->add_option("--model", train.model, "registered model name (see model_summary --list)")->capture_default_str();
  train_cmd->add_option("--data", train.data,
                        "data folder: CIFAR-10/100 binary batches, IDX files, or train/ and test/ image folders "
                        "(default: $CCT_DATA_DIR)");
  train_cmd->add_option("--format", train.format, "auto, cifar10, cifar100, idx or folder")->capture_default_str();
  train_cmd->add_option("--image-size", train.image_size, "resize image folders to this size")->capture_default_str();
  trainer_cli::add_loop_options(train_cmd, train.loop, "images");
  train_cmd->add_option("--augment", train.augment,
                        "none, basic (crop + flip), autoaugment or randaugment; with a --time-budget of 45 minutes "
                        "or more, autoaugment, attention dropout 0.1 and stochastic depth 0.1 are the defaults (the "
                        "long recipe)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "basic", "autoaugment", "randaugment"}));
  train_cmd->add_option("--mixup", train.mixup, "Mixup alpha (0: off)")->capture_default_str();
  train_cmd->add_option("--cutmix", train.cutmix, "CutMix alpha (0: off)")->capture_default_str();
  train_cmd->add_option("--mix-off-epoch", train.mix_off_epoch, "switch Mixup/CutMix off from this epoch (0: never)")
      ->capture_default_str();
  train_cmd->add_option("--random-erasing", train.random_erasing, "RandomErasing probability")->capture_default_str();
  trainer_cli::add_regularisation_options(train_cmd, train.dropout, train.attention_dropout, train.stochastic_depth);
  train_cmd->add_option("--limit-train", train.limit_train, "train on a random subset of N images (0: all), for quick trials")->capture_default_str();
  train_cmd->add_option("--limit-test", train.limit_test, "test on a random subset of N images (0: all)")->capture_default_str();
  train_cmd->add_flag("--tta-flip,!--no-tta-flip", train.tta_flip,
                      "validate and test on the mean logits of each image and its mirror image (on by default; "
                      "--no-tta-flip turns it off)");
  train_cmd->add_option("--out", train.out, "output folder")->capture_default_str();
  train_cmd->add_flag("--resume", train.resume, "continue the run in --out from its last checkpoint");

  EvalOptions eval;
  CLI::App* eval_cmd = app.add_subcommand("eval", "top-1/top-5, per-class accuracy and confusion matrix of a checkpoint");
  add_model_source_options(eval_cmd, eval.source);
  eval_cmd->add_option("--data", eval.data, "data folder (default: $CCT_DATA_DIR)");
  eval_cmd->add_option("--format", eval.format, "auto, cifar10, cifar100, idx or folder")->capture_default_str();
  eval_cmd->add_option("--split", eval.split, "test or train")->capture_default_str()->check(CLI::IsMember({"test", "train"}));
  eval_cmd->add_option("--batch-size", eval.batch_size, "images per forward pass")->capture_default_str();
  eval_cmd->add_option("--threads", eval.threads, "compute threads")->capture_default_str();
  eval_cmd->add_flag("--tta-flip", eval.tta_flip, "average the logits of each image and its mirror image");
  eval_cmd->add_option("--out", eval.out, "folder for confusion_matrix.svg and eval.json (optional)");

  PredictOptions predict;
  CLI::App* predict_cmd = app.add_subcommand("predict", "classify image files (PNG/JPG, any size)");
  add_model_source_options(predict_cmd, predict.source);
  predict_cmd->add_option("images", predict.images, "image files")->required()->check(CLI::ExistingFile);
  predict_cmd->add_option("--attention", predict.attention_png,
                          "write each image with its SeqPool token weights overlaid to this PNG");

  trainer_cli::add_predict_options(predict_cmd, predict.top_k, predict.json, predict.threads, "image");

  std::string plotted_run;
  const trainer_cli::Subcommand plot = trainer_cli::add_plot_command(app, plotted_run);

  return trainer_cli::parse_and_run(app, argc, argv,
                                    {{train_cmd, [&] { return run_train(train, *train_cmd); }},
                                     {eval_cmd, [&] { return run_eval(eval); }},
                                     {predict_cmd, [&] { return run_predict(predict); }},
                                     plot});
}
