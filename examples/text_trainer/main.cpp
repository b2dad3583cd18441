// cct_text: train, evaluate and use text Compact Transformers (TextCCT, TextCVT, TextViTLite) on
// sentence classification, on the CPU.
//
//   cct_text train   --dataset trec --data-dir ../shared/data/text [--glove FILE] [--out runs/NAME] ...
//   cct_text eval    --checkpoint runs/NAME/best.safetensors [--split test|val|train]
//   cct_text predict --checkpoint runs/NAME/best.safetensors "what is the capital of france ?" [--json]
//   echo "who wrote hamlet ?" | cct_text predict --checkpoint runs/NAME/best.safetensors
//
// Data: --data-dir names the folder holding trec/, ag_news/, ag_news_subset/ and sentence_clf/
// (text_data.hpp lists the files); without it $CCT_DATA_DIR/text, or $CCT_DATA_DIR itself, is used.
// `cct_text --help` and `cct_text train --help` list every option.
#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

}  // namespace

int main(int argc, char** argv) {
  using namespace cct::text_trainer;
  CLI::App app{"cct_text: train, evaluate and use text Compact Transformers (TextCCT, TextCVT, TextViTLite) for "
               "sentence classification, on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cct ") + CCT_VERSION_STRING);

  std::string datasets;
  for (const auto& name : known_datasets()) datasets += (datasets.empty() ? "" : ", ") + name;

  TrainOptions train;
  CLI::App* train_cmd =
      app.add_subcommand("train", "train a text model (progress bar, checkpoints, metrics and plots in --out)");
  train_cmd->add_option("--dataset", train.dataset, "data set: " + datasets)
      ->capture_default_str()
      ->check(CLI::IsMember(known_datasets()));
  train_cmd->add_option("--data-dir", train.data_dir,
                        "folder holding trec/, ag_news/, ag_news_subset/, sentence_clf/ (default: $CCT_DATA_DIR/text "
                        "or $CCT_DATA_DIR)");
  train_cmd->add_option("--model", train.model,
                        "text model: text_cct_{2,4,6}_k{1,2,4}, text_cvt_{2,4,6}, text_vit_{2,4,6}")
      ->capture_default_str();
  train_cmd->add_option("--seq-len", train.seq_len, "words per sentence (longer ones are cut, shorter padded; 64 for AG News)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--embedding-dim", train.embedding_dim, "word vector size without --glove")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--glove", train.glove,
                        "start the word vectors from a GloVe text file (its dimension sets the word vector size)")
      ->check(CLI::ExistingFile);
  train_cmd->add_flag("--freeze-embeddings", train.freeze_embeddings, "keep the word vectors fixed");
  train_cmd->add_option("--min-freq", train.min_freq, "a word needs this many occurrences in the training text")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--max-vocab", train.max_vocab, "largest vocabulary, <unk> and <pad> included (0: no limit)")
      ->capture_default_str();
  train_cmd->add_option("--positional-embedding", train.positional_embedding, "sine, learnable or none")
      ->capture_default_str()
      ->check(CLI::IsMember({"sine", "learnable", "none"}));
  train_cmd->add_option("--dropout", train.dropout, "dropout after the positional embedding and in the MLPs")
      ->capture_default_str();
  train_cmd->add_option("--attention-dropout", train.attention_dropout, "dropout of the attention weights")
      ->capture_default_str();
  train_cmd->add_option("--stochastic-depth", train.stochastic_depth, "largest drop-path rate (last layer)")
      ->capture_default_str();
  train_cmd->add_option("--epochs", train.epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  train_cmd->add_option("--batch-size", train.batch_size, "sentences per step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--lr", train.lr, "peak learning rate (AdamW)")->capture_default_str()->check(CLI::PositiveNumber);
  train_cmd->add_option("--min-lr", train.min_lr, "learning rate at the end of the cosine")->capture_default_str();
  train_cmd->add_option("--weight-decay", train.weight_decay, "AdamW decoupled weight decay (not on biases and 1-D params)")
      ->capture_default_str();
  train_cmd->add_option("--warmup-epochs", train.warmup_epochs, "linear warm-up epochs")->capture_default_str();
  train_cmd->add_option("--label-smoothing", train.label_smoothing, "label smoothing of the cross-entropy")
      ->capture_default_str();
  train_cmd->add_option("--clip-grad", train.clip_grad, "clip the global gradient norm to this (0: off)")
      ->capture_default_str();
  train_cmd->add_option("--threads", train.threads, "compute threads (default: all cores)")->capture_default_str();
  train_cmd->add_option("--seed", train.seed, "seed for weights, data order, validation split and dropout")
      ->capture_default_str();
  train_cmd->add_option("--val-split", train.val_split,
                        "fraction of the training part held out for model selection, for data sets without a dev "
                        "file (the test set is used only for the final numbers)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  train_cmd->add_option("--out", train.out, "output folder")->capture_default_str();
  train_cmd->add_flag("--resume", train.resume, "continue the run in --out from its last checkpoint");
  train_cmd->add_flag("--skip-nonfinite", train.skip_nonfinite,
                      "skip a step whose loss or gradient is NaN/inf instead of stopping");

  EvalOptions eval;
  CLI::App* eval_cmd = app.add_subcommand("eval", "accuracy, per-class accuracy and confusion matrix of a checkpoint");
  eval_cmd->add_option("--checkpoint", eval.checkpoint, "a .safetensors file written by train")->required();
  eval_cmd->add_option("--dataset", eval.dataset, "data set (default: the one the checkpoint was trained on)")
      ->check(CLI::IsMember(known_datasets()));
  eval_cmd->add_option("--data-dir", eval.data_dir, "data folder (default: $CCT_DATA_DIR, else the training run's)");
  eval_cmd->add_option("--split", eval.split, "test, val or train")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "val", "train"}));
  eval_cmd->add_option("--batch-size", eval.batch_size, "sentences per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  eval_cmd->add_option("--threads", eval.threads, "compute threads")->capture_default_str();
  eval_cmd->add_option("--out", eval.out, "folder for confusion_matrix.svg and eval.json (optional)");

  PredictOptions predict;
  CLI::App* predict_cmd =
      app.add_subcommand("predict", "classify sentences given as arguments, or one per line on stdin");
  predict_cmd->add_option("--checkpoint", predict.checkpoint, "a .safetensors file written by train")->required();
  predict_cmd->add_option("sentences", predict.sentences, "sentences (quote each); none: read stdin");
  predict_cmd->add_option("--top-k", predict.top_k, "classes to show per sentence")->capture_default_str();
  predict_cmd->add_flag("--json", predict.json, "machine-readable output with every probability and the raw logits");
  predict_cmd->add_option("--threads", predict.threads, "compute threads")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  try {
    if (*train_cmd) return run_train(train, &g_interrupted);
    if (*eval_cmd) return run_eval(eval);
    if (*predict_cmd) return run_predict(predict);
  } catch (const cct::Error& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 1;
  }
  return 0;
}
