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
#include <string>

#include <CLI/CLI.hpp>

#include "../common/mpi_job.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
  trainer_cli::MpiJob job(argc, argv);  // under mpirun: one data-parallel job (README, Training on several machines)
  using namespace text_trainer;
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
      ->check(trainer_cli::positive());
  train_cmd->add_option("--embedding-dim", train.embedding_dim, "word vector size without --glove")
      ->capture_default_str()
      ->check(trainer_cli::positive());
  train_cmd->add_option("--glove", train.glove,
                        "start the word vectors from a GloVe text file (its dimension sets the word vector size)")
      ->check(CLI::ExistingFile);
  train_cmd->add_flag("--freeze-embeddings", train.freeze_embeddings, "keep the word vectors fixed");
  train_cmd->add_option("--min-freq", train.min_freq, "a word needs this many occurrences in the training text")
      ->capture_default_str()
      ->check(trainer_cli::positive());
  train_cmd->add_option("--max-vocab", train.max_vocab, "largest vocabulary, <unk> and <pad> included (0: no limit)")
      ->capture_default_str();
  train_cmd->add_option("--positional-embedding", train.positional_embedding, "sine, learnable or none")
      ->capture_default_str()
      ->check(CLI::IsMember({"sine", "learnable", "none"}));
  trainer_cli::add_regularisation_options(train_cmd, train.dropout, train.attention_dropout, train.stochastic_depth);
  train_cmd->add_option("--word-dropout", train.word_dropout,
                        "in training, replace each word by <unk> with this probability (augmentation; 0: off)")
      ->capture_default_str();
  trainer_cli::add_loop_options(train_cmd, train.loop, "sentences");
  train_cmd->add_option("--out", train.out, "output folder")->capture_default_str();
  train_cmd->add_flag("--resume", train.resume, "continue the run in --out from its last checkpoint");

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
      ->check(trainer_cli::positive());
  eval_cmd->add_option("--threads", eval.threads, "compute threads")->capture_default_str();
  eval_cmd->add_option("--out", eval.out, "folder for confusion_matrix.svg and eval.json (optional)");

  PredictOptions predict;
  CLI::App* predict_cmd =
      app.add_subcommand("predict", "classify sentences given as arguments, or one per line on stdin");
  predict_cmd->add_option("--checkpoint", predict.checkpoint, "a .safetensors file written by train")->required();
  predict_cmd->add_option("sentences", predict.sentences, "sentences (quote each); none: read stdin");

  trainer_cli::add_predict_options(predict_cmd, predict.top_k, predict.json, predict.threads, "sentence");

  std::string plotted_run;
  const trainer_cli::Subcommand plot = trainer_cli::add_plot_command(app, plotted_run);

  return trainer_cli::parse_and_run(app, argc, argv,
                                    {{train_cmd, [&] { return run_train(train, *train_cmd); }},
                                     {eval_cmd, [&] { return run_eval(eval); }},
                                     {predict_cmd, [&] { return run_predict(predict); }},
                                     plot});
}
