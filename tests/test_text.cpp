// Text classification: tokenizer and vocabulary rules, corpus readers, word vectors, the Embedding
// module, the text tokenizer's mask, and TextCCT / TextCVT / TextViTLite (counts, masks, gradients,
// checkpoints).
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <cct/models/checkpoint.hpp>
#include <cct/nn/init.hpp>
#include <cct/models/text.hpp>
#include <cct/ops/reduce.hpp>
#include <cct/text/datasets.hpp>
#include <cct/text/word_vectors.hpp>

#include "test_helpers.hpp"

using cct::Shape;
using cct::Tensor;
using Catch::Contains;
namespace fs = std::filesystem;
namespace models = cct::models;
namespace text = cct::text;
using cct::testing::source_data_dir;
using Tokens = std::vector<std::string>;

namespace {

// A scratch directory removed when the test ends.
struct TextTempDir {
  fs::path path;
  TextTempDir() {
    path = fs::temp_directory_path() / ("cct_test_text_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TextTempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string file = (path / name).string();
    std::ofstream out(file, std::ios::binary);
    out << content;
    REQUIRE(out.good());
    return file;
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The message of the cct::IoError `fn` throws (a marker when it throws none).
template <class Fn>
std::string io_error_text(Fn&& fn) {
  try {
    fn();
  } catch (const cct::IoError& error) {
    return error.what();
  }
  return "<no IoError thrown>";
}


// A tiny text model for exact and finite-difference checks.
models::TextModelConfig tiny_text_config(models::TextFamily family, int64_t seq_len = 7) {
  models::TextModelConfig c;
  c.name = "tiny_text";
  c.family = family;
  c.num_layers = 1;
  c.num_heads = 2;
  c.embedding_dim = 8;
  c.mlp_ratio = 1.5;
  c.kernel_size = 2;
  c.patch_size = 2;
  c.vocab_size = 9;
  c.word_embedding_dim = 4;
  c.seq_len = seq_len;
  c.num_classes = 3;
  c.positional_embedding = cct::nn::PositionalEmbedding::kLearnable;
  c.seed = 5;
  return c;
}

Tensor<int64_t> ids_tensor(const std::vector<int64_t>& values, const Shape& shape) {
  return Tensor<int64_t>::from_vector(values, shape);
}
Tensor<uint8_t> mask_tensor(const std::vector<uint8_t>& values, const Shape& shape) {
  return Tensor<uint8_t>::from_vector(values, shape);
}

}  // namespace

// ---- tokenizer ------------------------------------------------------------------------------------------

TEST_CASE("tokenizer: lower-casing, punctuation and apostrophes inside words", "[text][tokenizer]") {
  const text::Tokenizer tokenizer;
  CHECK(tokenizer.tokenize("Hello, World! Don't stop.") == Tokens{"hello", ",", "world", "!", "don't", "stop", "."});
  CHECK(tokenizer.tokenize("'hello' students' rock 'n' roll o'clock") ==
        Tokens{"'", "hello", "'", "students", "'", "rock", "'", "n", "'", "roll", "o'clock"});
  CHECK(tokenizer.tokenize("U.S. $10-million (AP)--") ==
        Tokens{"u", ".", "s", ".", "$", "10", "-", "million", "(", "ap", ")", "-", "-"});
  CHECK(tokenizer.tokenize("a\tb\nc\r\nd\xC2\xA0" "e\x01" "f  ") == Tokens{"a", "b", "c", "d", "e", "f"});
  CHECK(tokenizer.tokenize("").empty());
  CHECK(tokenizer.tokenize(" \t ").empty());
  CHECK(tokenizer.tokenize("''") == Tokens{"'", "'"});
  CHECK(tokenizer.tokenize("<unk> <pad>") == Tokens{"<", "unk", ">", "<", "pad", ">"});
  // Every ASCII punctuation character is its own token.
  const std::string punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  const Tokens split = tokenizer.tokenize(punctuation);
  REQUIRE(split.size() == punctuation.size());
  for (size_t i = 0; i < punctuation.size(); ++i) CHECK(split[i] == std::string(1, punctuation[i]));
}

TEST_CASE("tokenizer: UTF-8 safety, Latin-1 repair and options", "[text][tokenizer]") {
  const text::Tokenizer tokenizer;
  // Non-ASCII characters stay inside words; Latin-1 capitals are lowered, × is not a letter.
  CHECK(tokenizer.tokenize("Café ÉCOLE naïve “Quoted” don’t 3×4") ==
        Tokens{"café", "école", "naïve", "“quoted”", "don’t", "3×4"});
  // An apostrophe between a non-ASCII character and a letter stays inside the word.
  CHECK(tokenizer.tokenize("café's") == Tokens{"café's"});
  // Invalid UTF-8: bytes are read as Latin-1 (0xE9 = é, 0xC9 = É).
  CHECK(tokenizer.tokenize(std::string("caf\xE9 \xC9T\xC9")) == Tokens{"café", "été"});
  for (const auto& token : tokenizer.tokenize(std::string("\xFF\xFE ok \xC0\x80 \xED\xA0\x80")))
    CHECK(text::is_valid_utf8(token));

  CHECK(text::is_valid_utf8("plain ascii"));
  CHECK(text::is_valid_utf8("\xE2\x82\xAC \xF0\x9F\x98\x80"));    // € and an emoji
  CHECK_FALSE(text::is_valid_utf8("\xC0\x80"));                   // overlong
  CHECK_FALSE(text::is_valid_utf8("\xED\xA0\x80"));               // surrogate
  CHECK_FALSE(text::is_valid_utf8("\xF4\x90\x80\x80"));           // above U+10FFFF
  CHECK_FALSE(text::is_valid_utf8("\xE2\x82"));                   // truncated
  CHECK(text::latin1_to_utf8("a\xF0" "b") == "a\xC3\xB0" "b");
  CHECK(text::repair_utf8("\xE2\x82\xAC\xE9") == "\xE2\x82\xAC\xC3\xA9");
  CHECK(text::lowercase("ÀÞ×ß ABC") == "àþ×ß abc");

  text::TokenizerOptions keep_case;
  keep_case.lowercase = false;
  CHECK(text::Tokenizer(keep_case).tokenize("Hello World.") == Tokens{"Hello", "World", "."});
  text::TokenizerOptions whitespace_only;
  whitespace_only.split_punctuation = false;
  CHECK(text::Tokenizer(whitespace_only).tokenize("Don't, stop!") == Tokens{"don't,", "stop!"});
}

// ---- vocabulary ---------------------------------------------------------------------------------------

TEST_CASE("vocabulary: reserved tokens, frequency order, ties, min_freq and max_size", "[text][vocabulary]") {
  const std::vector<std::string> corpus = {"b a c a", "C a d", "e"};
  const text::Vocabulary all = text::Vocabulary::build(corpus);
  // a ×3, c ×2, then b, d, e ×1 in byte order.
  CHECK(all.tokens() == Tokens{"<unk>", "<pad>", "a", "c", "b", "d", "e"});
  CHECK(all.index("a") == 2);
  CHECK(all.index("zzz") == text::Vocabulary::kUnknownIndex);
  CHECK(all.index("<pad>") == 1);
  CHECK(all.token(3) == "c");
  CHECK_THROWS_AS(all.token(7), cct::Error);

  text::VocabularyOptions frequent;
  frequent.min_freq = 2;
  CHECK(text::Vocabulary::build(corpus, frequent).tokens() == Tokens{"<unk>", "<pad>", "a", "c"});
  text::VocabularyOptions small;
  small.max_size = 5;
  CHECK(text::Vocabulary::build(corpus, small).tokens() == Tokens{"<unk>", "<pad>", "a", "c", "b"});
  small.max_size = 2;
  CHECK(text::Vocabulary::build(corpus, small).size() == 2);
  // Ties are broken by bytes whatever the corpus order.
  CHECK(text::Vocabulary::build({"zeta alpha mid"}).tokens() == Tokens{"<unk>", "<pad>", "alpha", "mid", "zeta"});
  CHECK(text::Vocabulary::build({"mid zeta alpha"}) == text::Vocabulary::build({"zeta alpha mid"}));

  frequent.min_freq = 0;
  CHECK_THROWS_WITH(text::Vocabulary::build(corpus, frequent), Contains("min_freq"));
  small.max_size = 1;
  CHECK_THROWS_WITH(text::Vocabulary::build(corpus, small), Contains("max_size"));
  CHECK_THROWS_WITH(text::Vocabulary(Tokens{"<pad>", "<unk>", "a"}), Contains("must start with"));
  CHECK_THROWS_WITH(text::Vocabulary(Tokens{"<unk>", "<pad>", "a", "a"}), Contains("appears twice"));
  CHECK(text::Vocabulary().size() == 2);
}

TEST_CASE("vocabulary: encode pads, truncates and masks", "[text][vocabulary]") {
  const text::Vocabulary vocab = text::Vocabulary::build({"b a c a", "c a d", "e"});
  const text::EncodedText padded = vocab.encode("A c zzz", 5);
  CHECK(padded.ids == std::vector<int64_t>{2, 3, 0, 1, 1});
  CHECK(padded.mask == std::vector<uint8_t>{1, 1, 1, 0, 0});
  CHECK(padded.num_tokens == 3);
  const text::EncodedText cut = vocab.encode("a b c d e", 2);
  CHECK(cut.ids == std::vector<int64_t>{2, 4});
  CHECK(cut.mask == std::vector<uint8_t>{1, 1});
  CHECK(cut.num_tokens == 5);
  const text::EncodedText empty = vocab.encode("", 3);
  CHECK(empty.ids == std::vector<int64_t>{1, 1, 1});
  CHECK(empty.mask == std::vector<uint8_t>{0, 0, 0});
  CHECK_THROWS_WITH(vocab.encode("a", 0), Contains("seq_len"));

  const std::vector<std::string> texts = {"a", "d e b", "c"};
  const text::EncodedBatch batch = vocab.encode_batch(texts, {1, 0}, 3);
  CHECK(batch.ids.shape() == Shape{2, 3});
  CHECK(batch.ids.to_vector() == std::vector<int64_t>{5, 6, 4, 2, 1, 1});
  CHECK(batch.mask.to_vector() == std::vector<uint8_t>{1, 1, 1, 1, 0, 0});
  CHECK(vocab.encode_batch(texts, 2).ids.shape() == Shape{3, 2});
  CHECK_THROWS_WITH(vocab.encode_batch(texts, {3}, 2), Contains("out of range"));
  CHECK(vocab.decode(batch.ids.to_vector()) == "d e b a");
}

TEST_CASE("vocabulary: JSON file and checkpoint metadata round trips", "[text][vocabulary]") {
  TextTempDir dir;
  text::TokenizerOptions options;
  options.lowercase = false;
  const text::Vocabulary vocab = text::Vocabulary::build({"Zoë said \"hi\"", "Zoë left"}, {}, options);
  REQUIRE(vocab.contains("Zoë"));
  const std::string path = dir.file("vocab.json");
  vocab.save(path);
  const text::Vocabulary loaded = text::Vocabulary::load(path);
  CHECK(loaded == vocab);
  CHECK(loaded.tokenizer().options() == options);
  CHECK(loaded.encode("Zoë left", 4).ids == vocab.encode("Zoë left", 4).ids);
  CHECK(text::Vocabulary::from_json(vocab.to_json()) == vocab);

  std::map<std::string, std::string> metadata;
  vocab.to_metadata(metadata);
  CHECK(text::Vocabulary::from_metadata(metadata, "ckpt") == vocab);
  CHECK_THAT(io_error_text([] { text::Vocabulary::from_metadata({}, "ckpt.safetensors"); }),
             Contains("ckpt.safetensors") && Contains("no vocabulary"));

  const std::string broken = dir.write("broken.json", "{\"format\": \"cct-vocabulary-1\", \"tokens\": [");
  CHECK_THAT(io_error_text([&] { text::Vocabulary::load(broken); }), Contains(broken));
  const std::string other = dir.write("other.json", "{\"format\": \"something-else\"}");
  CHECK_THAT(io_error_text([&] { text::Vocabulary::load(other); }), Contains("not a cct vocabulary"));
  const std::string bad_tokens =
      dir.write("bad.json", R"({"format": "cct-vocabulary-1", "lowercase": true, "split_punctuation": true, "tokens": ["<unk>", "x"]})");
  CHECK_THAT(io_error_text([&] { text::Vocabulary::load(bad_tokens); }), Contains(bad_tokens) && Contains("must start"));
}

// ---- readers ----------------------------------------------------------------------------------------

TEST_CASE("TREC reader: coarse labels, Latin-1, malformed lines", "[text][datasets]") {
  TextTempDir dir;
  const std::string good = dir.write("trec.label",
                                     "DESC:manner How did serfdom develop ?\n"
                                     "ENTY:cremat What films featured Popeye ?\r\n"
                                     "\n"
                                     "LOC:city Which city has a sister\xF0" "city ?\n"
                                     "ABBR:exp What is NASA ?\n"
                                     "HUM:ind Who ?\nNUM:date When ?");
  const text::TextDataset data = text::read_trec(good);
  REQUIRE(data.size() == 6);
  CHECK(data.labels == std::vector<int64_t>{1, 2, 4, 0, 3, 5});
  CHECK(data.class_names == Tokens{"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"});
  CHECK(data.texts[0] == "How did serfdom develop ?");
  CHECK(data.texts[1] == "What films featured Popeye ?");
  CHECK(data.texts[2] == "Which city has a sister\xC3\xB0" "city ?");
  CHECK(data.class_counts() == std::vector<int64_t>{1, 1, 1, 1, 1, 1});
  data.validate();

  const std::string unknown = dir.write("unknown.label", "DESC:manner How ?\nFOO:bar What ?\n");
  CHECK_THAT(io_error_text([&] { text::read_trec(unknown); }),
             Contains(unknown) && Contains("line 2") && Contains("FOO"));
  const std::string no_colon = dir.write("nocolon.label", "DESC:manner How ?\n\nDESC how is it ?\n");
  CHECK_THAT(io_error_text([&] { text::read_trec(no_colon); }), Contains("line 3") && Contains("COARSE:fine"));
  const std::string no_question = dir.write("noquestion.label", "DESC:manner   \n");
  CHECK_THAT(io_error_text([&] { text::read_trec(no_question); }), Contains("line 1") && Contains("empty"));
  CHECK_THAT(io_error_text([&] { text::read_trec(dir.file("absent.label")); }), Contains("missing file"));
  CHECK_THAT(io_error_text([&] { text::read_trec(dir.write("blank.label", "\n\n")); }), Contains("no questions"));
  // Strict UTF-8 refuses the Latin-1 byte, naming its line.
  CHECK_THAT(io_error_text([&] { text::read_trec(good, text::Encoding::kUtf8); }),
             Contains("line 4") && Contains("UTF-8"));
}

TEST_CASE("AG News readers: CSV quoting, the file's escapes, malformed records", "[text][datasets]") {
  TextTempDir dir;
  const std::string good = dir.write(
      "ag.csv",
      "\"3\",\"Title one\",\"Desc with \"\"quotes\"\" and \\$5 and a\\break, comma\"\n"
      "\"1\",\"T2\",\"It #39;s  quot;fine quot; &lt;b&gt; \\\\end\"\r\n"
      "\"2\",\"multi\nline\",\"AT amp;T  #151; x\"\n"
      "\"4\",\"\",\"\"\n");
  const text::TextDataset data = text::read_ag_news(good);
  REQUIRE(data.size() == 4);
  CHECK(data.labels == std::vector<int64_t>{2, 0, 1, 3});
  CHECK(data.class_names == Tokens{"World", "Sports", "Business", "Sci/Tech"});
  CHECK(data.texts[0] == "Title one Desc with \"quotes\" and $5 and a break, comma");
  CHECK(data.texts[1] == "T2 It's \"fine\" <b>   end");
  CHECK(data.texts[2] == "multi\nline AT&T \xE2\x80\x94 x");  // &#151; is Windows-1252's em dash
  text::AgNewsOptions raw;
  raw.clean = false;
  CHECK(text::read_ag_news(good, raw).texts[1] == "T2 It #39;s  quot;fine quot; &lt;b&gt; \\\\end");

  // A record spanning lines: errors in later records still name their own line.
  const std::string bad_class = dir.write("bad_class.csv", "\"1\",\"a\",\"b\"\n\"2\",\"x\ny\",\"z\"\n\"5\",\"a\",\"b\"\n");
  CHECK_THAT(io_error_text([&] { text::read_ag_news(bad_class); }),
             Contains(bad_class) && Contains("line 4") && Contains("class must be"));
  const std::string two_fields = dir.write("two.csv", "\"1\",\"a\",\"b\"\n\"1\",\"a\"\n");
  CHECK_THAT(io_error_text([&] { text::read_ag_news(two_fields); }), Contains("line 2") && Contains("expected 3 fields"));
  const std::string after_quote = dir.write("after.csv", "\"1\",\"a\"x,\"b\"\n");
  CHECK_THAT(io_error_text([&] { text::read_ag_news(after_quote); }), Contains("line 1") && Contains("closing quote"));
  const std::string open_quote = dir.write("open.csv", "\"1\",\"a\",\"b\"\n\"2\",\"never closed,b\n\n");
  CHECK_THAT(io_error_text([&] { text::read_ag_news(open_quote); }), Contains("line 2") && Contains("not closed"));

  // The subset format: "text",label with labels 0-3, unquoted fields allowed, optional header.
  const std::string subset = dir.write("subset.csv",
                                       "text,label\n"
                                       "\"Oil, prices #39;s rise\",2\n"
                                       "Plain text without commas,0\r\n"
                                       "\"Said \"\"no\"\"\",3\n");
  const text::TextDataset sub = text::read_ag_news_subset(subset);
  REQUIRE(sub.size() == 3);
  CHECK(sub.labels == std::vector<int64_t>{2, 0, 3});
  CHECK(sub.texts == Tokens{"Oil, prices's rise", "Plain text without commas", "Said \"no\""});
  CHECK(sub.num_classes() == 4);
  const std::string bad_label = dir.write("badlabel.csv", "\"a\",1\n\"b\",4\n");
  CHECK_THAT(io_error_text([&] { text::read_ag_news_subset(bad_label); }),
             Contains(bad_label) && Contains("line 2") && Contains("label must be"));
  const std::string late_header = dir.write("late.csv", "\"a\",1\ntext,label\n");
  CHECK_THAT(io_error_text([&] { text::read_ag_news_subset(late_header); }), Contains("line 2"));
}

TEST_CASE("label-sentence reader: labels, class names, encodings, malformed lines", "[text][datasets]") {
  TextTempDir dir;
  const std::string path = dir.write("mr.all", "1 a good movie\n0 bad one\n\n2 caf\xE9 au lait\n1\tna\xC3\xAFve\n");
  const text::TextDataset data = text::read_label_sentence_file(path);
  REQUIRE(data.size() == 4);
  CHECK(data.labels == std::vector<int64_t>{1, 0, 2, 1});
  CHECK(data.class_names == Tokens{"0", "1", "2"});
  CHECK(data.texts[2] == "café au lait");  // Latin-1 line
  CHECK(data.texts[3] == "naïve");         // UTF-8 line kept as it is
  text::LabelSentenceOptions named;
  named.class_names = {"negative", "positive", "neutral"};
  CHECK(text::read_label_sentence_file(path, named).class_names == named.class_names);
  named.class_names = {"negative", "positive"};
  CHECK_THAT(io_error_text([&] { text::read_label_sentence_file(path, named); }),
             Contains("line 4") && Contains("out of range"));

  const std::string bad = dir.write("bad.all", "1 fine\nx not a label\n");
  CHECK_THAT(io_error_text([&] { text::read_label_sentence_file(bad); }), Contains(bad) && Contains("line 2"));
  // A label alone is an empty text (as in the real CR and MPQA files).
  const std::string lonely = dir.write("lonely.all", "1 fine\n\n0  \n1\n");
  CHECK(text::read_label_sentence_file(lonely).texts == Tokens{"fine", "", ""});
  const std::string two_labels = dir.write("two.all", "1 fine\n1.5 half\n");
  CHECK_THAT(io_error_text([&] { text::read_label_sentence_file(two_labels); }), Contains("line 2") && Contains("'1.5 half'"));
  const std::string negative = dir.write("negative.all", "-1 bad\n");
  CHECK_THAT(io_error_text([&] { text::read_label_sentence_file(negative); }), Contains("line 1"));

  const text::TextDataset picked = data.subset({3, 3, 0});
  CHECK(picked.labels == std::vector<int64_t>{1, 1, 1});
  CHECK(picked.texts[2] == "a good movie");
  CHECK_THROWS_AS(data.subset({4}), cct::Error);
  text::TextDataset broken = data;
  broken.labels[0] = 7;
  CHECK_THROWS_WITH(broken.validate(), Contains("out of range"));
}

TEST_CASE("real corpora: TREC, AG News, AG News subset, sentence files", "[text][datasets][real]") {
  const std::string root = source_data_dir() + "/text";
  if (!fs::exists(root + "/trec/train_5500.label")) {
    CCT_SKIP_TEST(root << " not found (the shared data sets are not available)");
  }
  const text::TextDataset trec_train = text::read_trec(root + "/trec/train_5500.label");
  const text::TextDataset trec_test = text::read_trec(root + "/trec/TREC_10.label");
  CHECK(trec_train.size() == 5452);
  CHECK(trec_test.size() == 500);
  CHECK(trec_train.num_classes() == 6);
  for (int64_t count : trec_train.class_counts()) CHECK(count > 0);
  CHECK(trec_train.texts[65].find("\xC3\xB0") != std::string::npos);  // the one Latin-1 byte, line 66
  for (const auto& t : trec_train.texts) REQUIRE(text::is_valid_utf8(t));

  const text::TextDataset ag = text::read_ag_news(root + "/ag_news/test.csv");
  CHECK(ag.size() == 7600);
  CHECK(ag.class_counts() == std::vector<int64_t>{1900, 1900, 1900, 1900});
  int64_t leftovers = 0;
  for (const auto& t : ag.texts)
    leftovers += t.find('\\') != std::string::npos || t.find(" #39;") != std::string::npos ||
                 t.find(" quot;") != std::string::npos;
  CHECK(leftovers == 0);

  const std::string subset = root + "/ag_news_subset/";
  const text::TextDataset sub_train = text::read_ag_news_subset(subset + "train.csv");
  CHECK(sub_train.size() == 5000);
  CHECK(text::read_ag_news_subset(subset + "dev.csv").size() == 1000);
  CHECK(text::read_ag_news_subset(subset + "test.csv").size() == 1000);
  CHECK(sub_train.class_counts() == std::vector<int64_t>{1259, 1257, 1281, 1203});

  const std::string sentences = root + "/sentence_clf/";
  const text::TextDataset mr = text::read_label_sentence_file(sentences + "rt-polarity.all");
  CHECK(mr.size() == 10662);
  CHECK(mr.class_counts() == std::vector<int64_t>{5331, 5331});
  CHECK(text::read_label_sentence_file(sentences + "stsa.binary.train").size() == 6920);
  CHECK(text::read_label_sentence_file(sentences + "stsa.fine.train").num_classes() == 5);
  CHECK(text::read_label_sentence_file(sentences + "custrev.all").size() == 3775);
  CHECK(text::read_label_sentence_file(sentences + "mpqa.all").size() == 10606);
  for (const char* name : {"subj.all", "custrev.all", "mpqa.all", "stsa.fine.test"}) {
    INFO(name);
    const text::TextDataset d = text::read_label_sentence_file(sentences + name);
    CHECK(d.size() > 0);
    for (const auto& t : d.texts) REQUIRE(text::is_valid_utf8(t));
  }

  // A vocabulary of the TREC training questions encodes them without unknown words.
  const text::Vocabulary vocab = text::Vocabulary::build(trec_train.texts);
  INFO("TREC vocabulary: " << vocab.size() << " tokens");
  CHECK(vocab.size() > 5000);
  const text::EncodedBatch encoded = vocab.encode_batch(trec_train.texts, 64);
  int64_t unknown = 0;
  for (int64_t id : encoded.ids.to_vector()) unknown += id == text::Vocabulary::kUnknownIndex;
  CHECK(unknown == 0);
}

// ---- word vectors -----------------------------------------------------------------------------------

TEST_CASE("GloVe reader: format, errors, statistics and options", "[text][wordvec]") {
  TextTempDir dir;
  const std::string path = dir.write("vectors.txt",
                                     "the 0.5 -1 2\n"
                                     "of 1.5 0 -2\r\n"
                                     "\n"
                                     "at name@x.com 1 1 1\n"
                                     "The 9 9 9\n"
                                     "the 7 7 7\n");
  const text::WordVectors vectors = text::read_glove(path);
  CHECK(vectors.dim() == 3);
  CHECK(vectors.size() == 4);  // the second "the" is a duplicate
  CHECK(vectors.duplicates() == 1);
  CHECK(vectors.vectors_read() == 5);
  REQUIRE(vectors.find("of") != nullptr);
  CHECK(std::vector<float>(vectors.find("of"), vectors.find("of") + 3) == std::vector<float>{1.5f, 0.f, -2.f});
  CHECK(vectors.find("the")[0] == 0.5f);
  CHECK(vectors.contains("at name@x.com"));
  CHECK(vectors.find("absent") == nullptr);
  // Statistics over all 15 values read (duplicates included).
  const std::vector<double> all = {0.5, -1, 2, 1.5, 0, -2, 1, 1, 1, 9, 9, 9, 7, 7, 7};
  double mean = 0, squares = 0;
  for (double v : all) mean += v / all.size();
  for (double v : all) squares += (v - mean) * (v - mean);
  CHECK(vectors.value_mean() == Approx(mean));
  CHECK(vectors.value_std() == Approx(std::sqrt(squares / (all.size() - 1))));

  text::GloveOptions options;
  options.lowercase = true;
  const text::WordVectors lowered = text::read_glove(path, options);
  CHECK(lowered.find("the")[0] == 0.5f);  // the first "the" wins over "The"
  CHECK(lowered.size() == 3);
  const std::unordered_set<std::string> keep = {"of", "zzz"};
  options = {};
  options.keep = &keep;
  const text::WordVectors kept = text::read_glove(path, options);
  CHECK(kept.size() == 1);
  CHECK(kept.value_std() == Approx(vectors.value_std()));  // statistics do not depend on the filter
  options = {};
  options.max_lines = 2;
  CHECK(text::read_glove(path, options).words() == Tokens{"the", "of"});

  const std::string header = dir.write("w2v.txt", "2 3\nx 1 2 3\ny 4 5 6\n");
  CHECK(text::read_glove(header).size() == 2);
  const std::string header_mismatch = dir.write("w2v_bad.txt", "2 4\nx 1 2 3\n");
  CHECK_THAT(io_error_text([&] { text::read_glove(header_mismatch); }), Contains("line 2") && Contains("expected 4"));

  const std::string short_line = dir.write("short.txt", "a 1 2 3\nb 1 2\n");
  CHECK_THAT(io_error_text([&] { text::read_glove(short_line); }),
             Contains(short_line) && Contains("line 2") && Contains("has 2 values, expected 3"));
  const std::string long_line = dir.write("long.txt", "a 1 2 3\n\nb 1 2 3 4\n");
  CHECK_THAT(io_error_text([&] { text::read_glove(long_line); }), Contains("line 3") && Contains("has 4 values"));
  const std::string not_number = dir.write("nan.txt", "a 1 2 3\nb 1 x 3\nc 1 nan 3\n");
  CHECK_THAT(io_error_text([&] { text::read_glove(not_number); }), Contains("line 2") && Contains("'x'"));
  CHECK_THAT(io_error_text([&] { text::read_glove(dir.write("one.txt", "word\n")); }), Contains("line 1"));
  CHECK_THAT(io_error_text([&] { text::read_glove(dir.write("empty.txt", "\n")); }), Contains("no vectors"));
  CHECK_THAT(io_error_text([&] { text::read_glove(dir.file("absent.txt")); }), Contains("cannot open"));
}

TEST_CASE("word vectors: coverage and the embedding matrix", "[text][wordvec]") {
  TextTempDir dir;
  const std::string path = dir.write("vectors.txt", "the 0.5 -1 2\nof 1.5 0 -2\ncat 0 0 1\n");
  const text::WordVectors vectors = text::read_glove(path);
  const text::Vocabulary vocab = text::Vocabulary::build({"the cat of the dog", "the dog"});
  // tokens: <unk> <pad> the(3) dog(2) cat of
  REQUIRE(vocab.tokens() == Tokens{"<unk>", "<pad>", "the", "dog", "cat", "of"});
  const text::Coverage cover = text::coverage(vectors, vocab);
  CHECK(cover.found == 3);
  CHECK(cover.total == 4);
  CHECK(cover.missing == Tokens{"dog"});
  CHECK(cover.fraction() == Approx(0.75));

  cct::Generator gen(11);
  const Tensor<double> matrix = text::embedding_matrix<double>(vocab, vectors, gen);
  REQUIRE(matrix.shape() == Shape{6, 3});
  CHECK(std::vector<double>(matrix.data() + 2 * 3, matrix.data() + 3 * 3) == std::vector<double>{0.5, -1, 2});
  CHECK(std::vector<double>(matrix.data() + 5 * 3, matrix.data() + 6 * 3) == std::vector<double>{1.5, 0, -2});
  CHECK(std::vector<double>(matrix.data() + 3, matrix.data() + 6) == std::vector<double>{0, 0, 0});  // <pad>
  // Missing rows (<unk>, dog) are random, reproducible, and do not depend on which words were found.
  cct::Generator again(11);
  const Tensor<double> same = text::embedding_matrix<double>(vocab, vectors, again);
  CHECK(same.to_vector() == matrix.to_vector());
  CHECK(matrix.data()[3 * 3] != 0.0);
  cct::Generator third(11);
  const Tensor<double> none = text::embedding_matrix<double>(
      vocab, text::read_glove(dir.write("other.txt", "zz 1 1 1\n")), third, vectors.value_std());
  CHECK(std::vector<double>(none.data() + 9, none.data() + 12) == std::vector<double>(matrix.data() + 9, matrix.data() + 12));

  // The spread of new rows is the vectors' own: many missing words, sample std near value_std().
  std::vector<std::string> words;
  for (int i = 0; i < 3000; ++i) words.push_back("w" + std::to_string(i));
  std::string joined;
  for (const auto& w : words) joined += w + " ";
  const text::Vocabulary big = text::Vocabulary::build({joined});
  cct::Generator gen2(3);
  const Tensor<double> spread = text::embedding_matrix<double>(big, vectors, gen2);
  double sum = 0, squares = 0;
  const int64_t n = (big.size() - 2) * 3;
  for (int64_t i = 2 * 3; i < spread.numel(); ++i) sum += spread.data()[i];
  for (int64_t i = 2 * 3; i < spread.numel(); ++i) squares += (spread.data()[i] - sum / n) * (spread.data()[i] - sum / n);
  CHECK(std::sqrt(squares / (n - 1)) == Approx(vectors.value_std()).epsilon(0.05));
}

TEST_CASE("real word vectors: mini GloVe 1000x50 and coverage of a real vocabulary", "[text][wordvec][real]") {
  const std::string path = source_data_dir() + "/wordvec/mini_glove_1000x50.txt";
  if (!fs::exists(path)) {
    CCT_SKIP_TEST(path << " not found (the shared data sets are not available)");
  }
  const text::WordVectors vectors = text::read_glove(path);
  CHECK(vectors.dim() == 50);
  CHECK(vectors.size() == 1000);
  CHECK(vectors.contains("people"));
  CHECK(vectors.value_std() > 0.1);
  // Its own words are all found.
  std::string joined;
  for (const auto& w : vectors.words()) joined += w + " ";
  const text::Vocabulary own = text::Vocabulary::build({joined});
  const text::Coverage self = text::coverage(vectors, own);
  CHECK(self.found == self.total);
  CHECK(self.total == own.size() - 2);
  const std::string trec = source_data_dir() + "/text/trec/train_5500.label";
  if (fs::exists(trec)) {
    const text::Vocabulary vocab = text::Vocabulary::build(text::read_trec(trec).texts);
    const text::Coverage cover = text::coverage(vectors, vocab);
    INFO("mini GloVe covers " << cover.found << " of " << cover.total << " TREC tokens");
    CHECK(cover.found > 300);
    CHECK(cover.found < cover.total);
    cct::Generator gen(1);
    const Tensor<float> matrix = text::embedding_matrix(vocab, vectors, gen);
    CHECK(matrix.shape() == Shape{vocab.size(), 50});
    CHECK(matrix.data()[vocab.index("people") * 50] == vectors.find("people")[0]);
  }
}

// ---- Embedding module -----------------------------------------------------------------------------------

TEST_CASE("Embedding: lookup, padding row without gradient, freezing, pretrained tables", "[text][embedding]") {
  cct::Generator gen(4);
  auto embedding = std::make_shared<cct::nn::Embedding<double>>(5, 3, /*padding_idx=*/1, false, gen);
  CHECK(embedding->named_parameters().size() == 1);
  CHECK(embedding->named_parameters()[0].first == "weight");
  CHECK(embedding->weight.requires_grad());
  for (int j = 0; j < 3; ++j) CHECK(embedding->weight(1, j) == 0.0);
  const Tensor<int64_t> ids = ids_tensor({4, 1, 0, 4, 2, 1}, {2, 3});
  const Tensor<double> out = embedding->forward(ids);
  REQUIRE(out.shape() == Shape{2, 3, 3});
  for (int j = 0; j < 3; ++j) {
    CHECK(out(0, 0, j) == embedding->weight(4, j));
    CHECK(out(1, 1, j) == embedding->weight(2, j));
  }
  cct::sum(cct::mul(out, cct::testing::random_constant({2, 3, 3}, 9))).backward();
  const Tensor<double> grad = embedding->weight.grad();
  REQUIRE(grad.defined());
  for (int j = 0; j < 3; ++j) {
    CHECK(grad(1, j) == 0.0);  // the padding row, although index 1 was looked up twice
    CHECK(grad(3, j) == 0.0);  // never looked up
    CHECK(grad(4, j) != 0.0);
  }
  CHECK_THROWS_AS(embedding->forward(ids_tensor({5}, {1})), cct::Error);
  CHECK_THROWS_WITH(cct::nn::Embedding<float>(4, 2, 4), Contains("padding_idx"));

  // Frozen: a parameter that is saved but neither trained nor given a gradient.
  auto table = Tensor<double>::from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  auto frozen = cct::nn::Embedding<double>::from_pretrained(table);
  CHECK(frozen->frozen());
  CHECK(frozen->num_parameters(/*trainable_only=*/true) == 0);
  CHECK(frozen->num_parameters() == 6);
  CHECK(frozen->weight.to_vector() == table.to_vector());
  CHECK_FALSE(frozen->weight.shares_storage(table));
  auto leaf = cct::testing::random_leaf({2, 2}, 3);
  cct::sum(cct::mul(frozen->forward(ids_tensor({2, 0}, {2})), leaf)).backward();
  CHECK_FALSE(frozen->weight.grad().defined());
  CHECK(leaf.grad().defined());
  frozen->freeze(false);
  CHECK(frozen->weight.requires_grad());
  CHECK(cct::nn::Embedding<double>::from_pretrained(table, false)->weight.requires_grad());

  // Gradient of the lookup with respect to the table, repeated and padding indices included.
  cct::testing::check_gradients(
      [&](const std::vector<Tensor<double>>& x) { return cct::embedding(ids, x[0]); },
      {cct::testing::random_leaf({5, 3}, 12)});
}

// ---- text tokenizer -------------------------------------------------------------------------------------

TEST_CASE("TextTokenizer: hand-computed tokens and masks, names, lengths", "[text][tokenizer_module]") {
  cct::nn::TextTokenizerConfig config;
  config.word_embedding_dim = 2;
  config.embedding_dim = 1;
  config.kernel_size = 2;
  config.stride = 1;
  config.padding = 1;
  cct::nn::TextTokenizer<double> tokenizer(config);
  const auto names = tokenizer.named_parameters();
  REQUIRE(names.size() == 1);
  CHECK(names[0].first == "conv_layers.0.weight");
  CHECK(names[0].second.shape() == Shape{1, 1, 2, 2});
  {
    cct::NoGradGuard no_grad;
    tokenizer.conv->weight.copy_(Tensor<double>::from_vector({1, 0, 0, 1}, {1, 1, 2, 2}));
  }
  // Conv over rows [t−1, t] with zero padding: x[t−1]·(1,0) + x[t]·(0,1) = 2, 0, 3.5, 0.5; ReLU keeps
  // them; max-pool windows {−1,0}, {1,2}, {3,4} give 2, 3.5, 0.5.
  const Tensor<double> x = Tensor<double>::from_vector({1, 2, 3, -1, 0.5, 0.5}, {1, 3, 2});
  const auto plain = tokenizer.forward(x);
  CHECK(plain.tokens.shape() == Shape{1, 3, 1});
  CHECK(plain.tokens.to_vector() == std::vector<double>{2, 3.5, 0.5});
  CHECK_FALSE(plain.mask.defined());
  // Words {0, 1} real: conv positions 0–2 see a real word, 3 does not; pooled: 1, 1, 0, and the third
  // token is zeroed.
  const auto masked = tokenizer.forward(x, mask_tensor({1, 1, 0}, {1, 3}));
  CHECK(masked.mask.to_vector() == std::vector<uint8_t>{1, 1, 0});
  CHECK(masked.tokens.to_vector() == std::vector<double>{2, 3.5, 0});
  // Negative conv outputs are cut by ReLU.
  const auto negative = tokenizer.forward(Tensor<double>::from_vector({-1, -2, -3, -1, -1, -1}, {1, 3, 2}));
  CHECK(negative.tokens.to_vector() == std::vector<double>{0, 0, 0});

  // Mask windows by hand for each TextCCT kernel and the patch tokenizer, 8 words of which 3 are real.
  const Tensor<uint8_t> words = mask_tensor({1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {2, 8});
  struct Case {
    int64_t kernel, stride, padding;
    bool pool;
    std::vector<uint8_t> expected;
  };
  // Pool windows over conv positions: token j ↔ {2j−1, 2j}.
  // k=1 (s1 p1): conv t ↔ word t−1 (10 positions; t = 0 sees only padding): real 1–3 / 8 → 0 1 1 0 0 0 / 0 0 0 0 1 0.
  // k=2 (s1 p1): conv t ↔ words t−1, t (9 positions): real 0–3 / 7–8 → 1 1 1 0 0 / 0 0 0 0 1.
  // k=4 (s1 p2): conv t ↔ words t−2 .. t+1 (9 positions): real 0–4 / 6–8 → 1 1 1 0 0 / 0 0 0 1 1.
  // patch 4: tokens ↔ words 0–3 and 4–7.
  const std::vector<Case> cases = {
      {1, 1, 1, true, {0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
      {2, 1, 1, true, {1, 1, 1, 0, 0, 0, 0, 0, 0, 1}},
      {4, 1, 2, true, {1, 1, 1, 0, 0, 0, 0, 0, 1, 1}},
      {4, 4, 0, false, {1, 0, 0, 1}},
  };
  for (const auto& c : cases) {
    INFO("kernel " << c.kernel << " stride " << c.stride << " padding " << c.padding);
    cct::nn::TextTokenizerConfig tc;
    tc.word_embedding_dim = 3;
    tc.embedding_dim = 2;
    tc.kernel_size = c.kernel;
    tc.stride = c.stride;
    tc.padding = c.padding;
    tc.activation = c.pool;
    tc.max_pool = c.pool;
    cct::nn::TextTokenizer<float> t(tc);
    const Tensor<uint8_t> token_mask = t.forward_mask(words);
    CHECK(token_mask.shape() == Shape{2, t.sequence_length(8)});
    CHECK(token_mask.to_vector() == c.expected);
  }

  // Token counts for 64 words: the conv/pool arithmetic of the reference.
  for (const auto& [kernel, tokens] : std::vector<std::pair<int64_t, int64_t>>{{1, 34}, {2, 33}, {4, 33}}) {
    auto config_k = models::make_text_config("text_cct_2_k" + std::to_string(kernel), {100});
    CHECK(cct::nn::TextTokenizer<float>(config_k.tokenizer_config()).sequence_length(64) == tokens);
  }
  CHECK(cct::nn::TextTokenizer<float>(models::make_text_config("text_cvt_2", {100}).tokenizer_config())
            .sequence_length(64) == 16);
  CHECK_THROWS_AS(tokenizer.forward(Tensor<double>::zeros({1, 3, 5})), cct::ShapeError);
}

// ---- models ----------------------------------------------------------------------------------------

TEST_CASE("text models: parameter counts equal the reference's", "[text][models]") {
  cct::nn::init::SkipInitGuard structure_only;  // counts need no random weights
  // tokenizer + classifier, trainable (the default sine table is frozen; the embedding excluded),
  // 4 classes, E = 300, 64 words.
  const std::vector<std::tuple<std::string, int64_t, int64_t>> reference = {
      {"text_cct_2_k1", 237701, 34}, {"text_cct_2_k2", 276101, 33}, {"text_cct_2_k4", 352901, 33},
      {"text_cct_4_k1", 436101, 34}, {"text_cct_4_k2", 474501, 33}, {"text_cct_4_k4", 551301, 33},
      {"text_cct_6_k1", 3236613, 34}, {"text_cct_6_k2", 3313413, 33}, {"text_cct_6_k4", 3467013, 33}};
  for (const auto& [name, count, tokens] : reference) {
    INFO(name);
    auto model = models::create_text(name, {/*vocab_size=*/1000});
    CHECK(model->sequence_length() == tokens);
    CHECK(model->num_transformer_parameters() == count);
    CHECK(model->tokenizer->num_parameters() + model->classifier->num_parameters(true) == count);
    const int64_t D = model->config().embedding_dim;
    CHECK(model->classifier->positional_emb.shape() == Shape{1, tokens, D});
    // Everything: + the embedding table and the frozen sine table.
    CHECK(model->num_parameters() == count + 1000 * 300 + tokens * D);
    CHECK(model->num_parameters(true) == count + 1000 * 300);
    // A learnable table adds N·D trainable parameters (N rows: the intended size).
    models::TextModelOptions learnable{1000};
    learnable.positional_embedding = cct::nn::PositionalEmbedding::kLearnable;
    CHECK(models::create_text(name, learnable)->num_transformer_parameters() == count + tokens * D);
  }
  // text_cct_L alone is kernel 4; frozen embeddings are not counted as trainable.
  CHECK(models::create_text("text_cct_2", {1000})->num_transformer_parameters() == 352901);
  models::TextModelOptions frozen{1000};
  frozen.freeze_embedding = true;
  CHECK(models::create_text("text_cct_2_k4", frozen)->num_parameters(true) == 352901);
  // CVT / ViT: conv D·4·E (no bias) + classifier; text_cvt_6 has D = 128, 4 heads, MLP ratio 2.
  auto cvt6 = models::create_text("text_cvt_6", {1000});
  CHECK(cvt6->config().embedding_dim == 128);
  CHECK(cvt6->config().num_heads == 4);
  const int64_t D = 128, F = 256;
  CHECK(cvt6->num_transformer_parameters() ==
        D * 4 * 300 + 6 * (4 * D * D + 2 * D * F + 6 * D + F) + 2 * D + (D + 1) + (4 * D + 4));
  auto vit2 = models::create_text("text_vit_2", {1000});
  CHECK(vit2->classifier->positional_emb.shape() == Shape{1, 17, 128});
  CHECK(vit2->num_transformer_parameters() ==
        128 * 4 * 300 + 128 + 2 * (4 * 128 * 128 + 2 * 128 * 128 + 6 * 128 + 128) + 2 * 128 + (4 * 128 + 4));
  CHECK(models::create_text("text_vit_lite_6", {1000})->config().embedding_dim == 256);
}

TEST_CASE("text models: names, registry, options and config metadata", "[text][models]") {
  auto model = models::create_text("text_cct_2_k2", {50, 6});
  const auto named = model->named_parameters();
  REQUIRE(named.size() >= 3);
  CHECK(named[0].first == "embedder.embeddings.weight");
  CHECK(named[0].second.shape() == Shape{50, 300});
  CHECK(named[1].first == "tokenizer.conv_layers.0.weight");
  CHECK(named[1].second.shape() == Shape{128, 1, 2, 300});
  CHECK(named[2].first == "classifier.positional_emb");
  CHECK_FALSE(named[2].second.requires_grad());
  CHECK(named.back().first == "classifier.fc.bias");
  CHECK(named.back().second.shape() == Shape{6});
  CHECK(model->type_name() == "TextCCT");
  CHECK(models::create_text("text_cvt_2", {50})->type_name() == "TextCVT");
  CHECK(models::create_text("text_vit_4", {50})->type_name() == "TextViTLite");
  CHECK(models::create_text("text_vit_4", {50})->named_parameters()[2].first == "classifier.class_emb");
  // Padding row of a fresh table is zero.
  for (int64_t j = 0; j < 300; ++j) REQUIRE(named[0].second(1, j) == 0.0f);

  CHECK(models::registered_text_models().size() == 15);
  for (const auto& name : models::registered_text_models()) {
    INFO(name);
    const auto config = models::make_text_config(name, {100});
    CHECK(config.name == name);
  }
  for (const char* bad : {"text_cct_3_k1", "text_cct_2_k3", "text_cct_2_k4x", "text_cvt_2_k4", "text_cct_02", "cct_2"})
    CHECK_THROWS_WITH(models::make_text_config(bad, {100}), Contains("unknown text model") && Contains("text_cct_2_k1"));
  CHECK_THROWS_WITH(models::make_text_config("text_cvt_2", {100, 0, 0, 0, 2}), Contains("TextCCT only"));
  CHECK_THROWS_WITH(models::create_text("text_cct_2_k1", {}), Contains("vocab_size"));

  models::TextModelOptions options{123, 5, 50, 32, 1};
  options.positional_embedding = cct::nn::PositionalEmbedding::kLearnable;
  options.freeze_embedding = true;
  options.dropout = 0.05;
  const auto config = models::make_text_config("text_cct_4", options);
  CHECK(config.kernel_size == 1);
  CHECK(config.seq_len == 32);
  CHECK(config.word_embedding_dim == 50);
  const auto restored = models::TextModelConfig::from_metadata(config.to_metadata(), "x");
  CHECK(restored == config);
  CHECK(restored.freeze_embedding);
  CHECK(restored.dropout == 0.05);
  auto metadata = config.to_metadata();
  metadata["seq_len"] = "32x";
  CHECK_THROWS_WITH(models::TextModelConfig::from_metadata(metadata, "f.safetensors"),
                    Contains("f.safetensors") && Contains("seq_len"));
  metadata = config.to_metadata();
  metadata["family"] = "cct";
  CHECK_THROWS_WITH(models::TextModelConfig::from_metadata(metadata, "f"), Contains("unknown text model family 'cct'"));
  metadata = config.to_metadata();
  metadata["vocab_size"] = "12abc";  // integers parse whole, as for image models
  CHECK_THROWS_WITH(models::TextModelConfig::from_metadata(metadata, "f"),
                    Contains("f: metadata 'vocab_size' is not an integer: '12abc'"));
  metadata = config.to_metadata();
  metadata.erase("vocab_size");
  CHECK_THROWS_WITH(models::TextModelConfig::from_metadata(metadata, "f"), Contains("no 'vocab_size'"));
}

TEST_CASE("text models: padding changes nothing, through every layer", "[text][models][mask]") {
  for (auto family : {models::TextFamily::kCCT, models::TextFamily::kCVT, models::TextFamily::kViTLite}) {
    for (int64_t kernel : {1, 2, 4}) {
      if (family != models::TextFamily::kCCT && kernel != 4) continue;
      for (auto pe : {cct::nn::PositionalEmbedding::kSine, cct::nn::PositionalEmbedding::kLearnable}) {
        INFO(models::text_family_name(family) << " kernel " << kernel << " pe " << cct::nn::positional_embedding_name(pe));
        auto short_config = tiny_text_config(family, 12);
        short_config.kernel_size = kernel;
        short_config.patch_size = 4;
        short_config.embedding_dim = 16;
        short_config.num_layers = 2;
        short_config.positional_embedding = pe;
        auto long_config = short_config;
        long_config.seq_len = 21;
        auto short_model = models::create_text<float>(short_config);
        auto long_model = models::create_text<float>(long_config);
        short_model->eval();
        long_model->eval();
        // The same weights; the longer positional table starts with the shorter one.
        long_model->load_state_dict(short_model->state_dict(), /*strict=*/false);
        {
          cct::NoGradGuard no_grad;
          const Tensor<float>& from = short_model->classifier->positional_emb;
          std::copy(from.data(), from.data() + from.numel(), long_model->classifier->positional_emb.data());
        }
        // Two texts of 7 and 10 real words. (Fewer than 12: TextCCT's kernel-4 windows [t−2, t+1] reach
        // two words past the last real one, which the short model must have room for too.)
        std::vector<int64_t> short_ids, long_ids;
        std::vector<uint8_t> short_mask, long_mask;
        for (int64_t b = 0; b < 2; ++b) {
          const int64_t real = b == 0 ? 7 : 10;
          for (int64_t i = 0; i < 21; ++i) {
            const int64_t id = i < real ? 2 + (i * 5 + b * 3) % 7 : 1;
            if (i < 12) {
              short_ids.push_back(id);
              short_mask.push_back(i < real);
            }
            long_ids.push_back(id);
            long_mask.push_back(i < real);
          }
        }
        const Tensor<float> short_logits = short_model->forward(ids_tensor(short_ids, {2, 12}), mask_tensor(short_mask, {2, 12}));
        const Tensor<float> long_logits = long_model->forward(ids_tensor(long_ids, {2, 21}), mask_tensor(long_mask, {2, 21}));
        CCT_REQUIRE_CLOSE(long_logits, short_logits, 1e-5);
        // Without a mask, "<pad>" indices are found by value: the same result.
        CCT_REQUIRE_CLOSE(long_model->forward(ids_tensor(long_ids, {2, 21})), long_logits, 1e-6);
        // Whatever sits at masked positions (here other words) changes nothing either.
        std::vector<int64_t> garbage = long_ids;
        for (size_t i = 0; i < garbage.size(); ++i)
          if (!long_mask[i]) garbage[i] = 2 + static_cast<int64_t>(i % 7);
        cct::nn::ClassifierTrace trace;
        trace.want_attention = true;
        const Tensor<float> garbage_logits = long_model->forward(ids_tensor(garbage, {2, 21}), mask_tensor(long_mask, {2, 21}), &trace);
        CCT_REQUIRE_CLOSE(garbage_logits, long_logits, 1e-6);
        // …and the transformer gives masked tokens no attention and no pooling weight.
        const Tensor<uint8_t> token_mask = long_model->tokenizer->forward_mask(mask_tensor(long_mask, {2, 21}));
        const int64_t N = token_mask.size(1), tokens = N + (family == models::TextFamily::kViTLite ? 1 : 0);
        const int64_t offset = tokens - N;
        for (const auto& attention : trace.attention) {
          REQUIRE(attention.shape() == Shape{2, 2, tokens, tokens});
          for (int64_t b = 0; b < 2; ++b)
            for (int64_t h = 0; h < 2; ++h)
              for (int64_t q = 0; q < tokens; ++q)
                for (int64_t k = 0; k < N; ++k)
                  if (!token_mask(b, k)) REQUIRE(attention(b, h, q, k + offset) == 0.0f);
        }
        if (family != models::TextFamily::kViTLite) {
          REQUIRE(trace.pool_weights.shape() == Shape{2, N});
          for (int64_t b = 0; b < 2; ++b)
            for (int64_t k = 0; k < N; ++k)
              if (!token_mask(b, k)) REQUIRE(trace.pool_weights(b, k) == 0.0f);
        }
      }
    }
  }
}

TEST_CASE("text models: whole-model gradients match finite differences (double)", "[text][models][gradcheck]") {
  for (auto family : {models::TextFamily::kCCT, models::TextFamily::kCVT, models::TextFamily::kViTLite}) {
    INFO(models::text_family_name(family));
    auto model = models::create_text<double>(tiny_text_config(family));
    model->eval();  // dropout off: the function must be deterministic
    const Tensor<uint8_t> mask = mask_tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, {2, 7});
    // From word vectors on: tokenizer, mask, transformer.
    cct::testing::check_gradients(
        [&](const std::vector<Tensor<double>>& x) { return model->forward_embedded(x[0], mask); },
        {cct::testing::random_leaf({2, 7, 4}, 31)});

    // Every parameter tensor (the embedding table included): a few elements each.
    const Tensor<int64_t> ids = ids_tensor({2, 3, 4, 5, 6, 7, 8, 8, 0, 3, 6, 1, 1, 1}, {2, 7});
    auto weights = cct::testing::random_constant({2, 3}, 32);
    auto loss_of = [&]() { return cct::sum(cct::mul(model->forward(ids, mask), weights)).item(); };
    model->zero_grad();
    cct::sum(cct::mul(model->forward(ids, mask), weights)).backward();
    cct::NoGradGuard no_grad;
    for (auto& [name, p] : model->named_parameters()) {
      if (!p.requires_grad()) continue;
      INFO(name);
      REQUIRE(p.grad().defined());
      for (int64_t i = 0; i < p.numel(); i += std::max<int64_t>(1, p.numel() / 7)) {
        const double saved = p.data()[i], h = 1e-6;
        p.data()[i] = saved + h;
        const double plus = loss_of();
        p.data()[i] = saved - h;
        const double minus = loss_of();
        p.data()[i] = saved;
        CHECK(p.grad().data()[i] == Approx((plus - minus) / (2 * h)).margin(1e-6).epsilon(1e-4));
      }
    }
    // The padding row gets no gradient.
    const Tensor<double> table_grad = model->embedder->embeddings->weight.grad();
    for (int64_t j = 0; j < 4; ++j) CHECK(table_grad(1, j) == 0.0);
  }
}

TEST_CASE("text models: frozen and pretrained embeddings", "[text][models]") {
  auto config = tiny_text_config(models::TextFamily::kCCT);
  config.freeze_embedding = true;
  cct::Generator gen(2);
  const Tensor<float> pretrained = Tensor<float>::normal({9, 4}, 0.0, 1.0, gen);
  auto model = models::create_text<float>(config, pretrained);
  CHECK(model->embedder->embeddings->weight.to_vector() == pretrained.to_vector());
  CHECK_FALSE(model->embedder->embeddings->weight.requires_grad());
  const Tensor<int64_t> ids = ids_tensor({2, 3, 4, 5, 1, 1, 1}, {1, 7});
  cct::sum(model->forward(ids)).backward();
  CHECK_FALSE(model->embedder->embeddings->weight.grad().defined());
  CHECK(model->tokenizer->conv->weight.grad().defined());
  // The transformer's initial weights do not depend on the table.
  config.freeze_embedding = false;
  auto fresh = models::create_text<float>(config);
  CHECK(fresh->tokenizer->conv->weight.to_vector() == model->tokenizer->conv->weight.to_vector());
  CHECK_THROWS_AS(models::create_text<float>(config, Tensor<float>::zeros({8, 4})), cct::ShapeError);
  CHECK_THROWS_AS(model->forward(ids_tensor({1, 2, 3}, {1, 3})), cct::ShapeError);
}

TEST_CASE("text models: checkpoints carry config and vocabulary", "[text][models][checkpoint]") {
  TextTempDir dir;
  const text::Vocabulary vocab = text::Vocabulary::build({"the cat sat", "the dog ran far away"});
  REQUIRE(vocab.size() == 9);
  auto config = tiny_text_config(models::TextFamily::kViTLite);
  config.name = "text_vit_2";
  auto model = models::create_text<float>(config);
  model->eval();
  const std::string path = dir.file("model.safetensors");
  models::save_model(path, *model, &vocab, {{"epoch", "3"}});
  CHECK(models::read_text_model_config(path) == config);

  auto loaded = models::load_text_model(path);
  REQUIRE(loaded.has_vocabulary);
  CHECK(loaded.vocabulary == vocab);
  loaded.model->eval();
  const text::EncodedBatch batch = vocab.encode_batch({"The cat ran", "a dog"}, config.seq_len);
  CHECK(loaded.model->forward(batch.ids, batch.mask).to_vector() == model->forward(batch.ids, batch.mask).to_vector());

  // Another architecture is refused with both names; weights only load into the same layout.
  auto other_config = config;
  other_config.num_classes = 4;
  auto other = models::create_text<float>(other_config);
  CHECK_THAT(io_error_text([&] { models::load_weights(path, *other); }), Contains(path) && Contains("architecture"));
  auto same = models::create_text<float>(config);
  same->eval();
  models::load_weights(path, *same);
  CHECK(same->forward(batch.ids, batch.mask).to_vector() == model->forward(batch.ids, batch.mask).to_vector());
  // An image-model reader refuses a text checkpoint, naming the text one.
  CHECK_THROWS_WITH(models::read_model_config(path), Contains("models::load_text_model(path)"));
  // A vocabulary of another size does not go with the model.
  const text::Vocabulary tiny = text::Vocabulary::build({"a"});
  CHECK_THROWS_WITH(models::save_model(path, *model, &tiny), Contains("vocabulary"));

  // Every family round-trips bit-exactly, with and without a vocabulary, and the training entries
  // a training checkpoint adds are ignored by the model.
  for (auto family : {models::TextFamily::kCCT, models::TextFamily::kCVT, models::TextFamily::kViTLite}) {
    INFO(models::text_family_name(family));
    auto saved = models::create_text<float>(tiny_text_config(family));
    saved->eval();
    const std::string file = dir.file(std::string(models::text_family_name(family)) + ".safetensors");
    models::save_model(file, *saved, {{"note", "round trip"}}, {{"training.epoch", Tensor<float>::scalar(2.0f)}});
    const models::LoadedTextModel<float> back = models::load_text_model(file);
    CHECK_FALSE(back.has_vocabulary);
    CHECK(back.model->config() == saved->config());
    CHECK(back.model->type_name() == saved->type_name());
    back.model->eval();
    CHECK(back.model->forward(batch.ids, batch.mask).to_vector() == saved->forward(batch.ids, batch.mask).to_vector());
  }
}

TEST_CASE("text models: a file without cct's format marker holds weights only", "[text][models][checkpoint]") {
  TextTempDir dir;
  const auto config = tiny_text_config(models::TextFamily::kCCT);
  auto model = models::create_text<float>(config);
  const std::string path = dir.file("weights_only.safetensors");
  cct::io::save_safetensors(path, model->state_dict(), {{"model", "text_cct_2_k2"}});  // foreign metadata
  for (const std::string message : {io_error_text([&] { models::read_text_model_config(path); }),
                                    io_error_text([&] { models::load_text_model(path); })}) {
    CHECK_THAT(message, Contains(path) && Contains("holds weights only") &&
                            Contains("models::create_text(name, {vocab_size})") &&
                            Contains("models::load_weights(path, model)"));
  }
  auto built = models::create_text<float>(config);
  CHECK(models::load_weights(path, *built).complete());
  CHECK(built->embedder->embeddings->weight.to_vector() == model->embedder->embeddings->weight.to_vector());
  CHECK(built->classifier->fc->weight.to_vector() == model->classifier->fc->weight.to_vector());
}
