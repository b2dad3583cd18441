// Data layer: dataset readers (CIFAR binary, IDX, image folders, the real CIFAR-10 JPEGs), transforms,
// augmentations (checked against torchvision), Mixup/CutMix, the DataLoader and image writing.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <cct/data/augment.hpp>
#include <cct/data/cifar.hpp>
#include <cct/data/dataset.hpp>
#include <cct/data/idx.hpp>
#include <cct/data/image_folder.hpp>
#include <cct/data/image_io.hpp>
#include <cct/data/loader.hpp>
#include <cct/data/transforms.hpp>
#include <cct/io/atomic_file.hpp>

#include "test_helpers.hpp"

namespace fs = std::filesystem;
using cct::Generator;
using cct::IoError;
using cct::Shape;
using cct::Tensor;
using namespace cct::data;
using cct::testing::source_data_dir;

namespace {

// Where test files go: /dev/shm (RAM) when usable, since unpacking 60,000 JPEGs or fsyncing many small
// files on a busy disk can take tens of seconds; the system temp directory otherwise.
fs::path scratch_root() {
  static const fs::path root = [] {
    std::error_code error;
    const fs::path shm = "/dev/shm";
    if (fs::is_directory(shm, error) && ::access(shm.c_str(), W_OK) == 0) return shm;
    return fs::temp_directory_path();
  }();
  return root;
}

// A fresh directory per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = scratch_root() / ("cct_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// Message of the cct::IoError `fn` throws (fails the test when it throws nothing or something else).
template <typename Fn>
std::string io_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const IoError& e) {
    return e.what();
  }
  FAIL("expected a cct::IoError");
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A CIFAR record: label byte(s) then 3072 pixel bytes that encode (record seed, position).
std::string cifar_record(const std::vector<uint8_t>& label_bytes, int seed) {
  std::string record(label_bytes.begin(), label_bytes.end());
  for (int i = 0; i < 3072; ++i) record.push_back(static_cast<char>((i * 7 + seed * 31) % 256));
  return record;
}

Image random_image(int64_t channels, int64_t height, int64_t width, uint64_t seed) {
  Generator gen(seed);
  Image image(channels, height, width);
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(gen.randint(256));
  return image;
}

// N random images with labels i % classes.
ImageDataset random_dataset(int64_t n, int64_t classes, int64_t channels, int64_t height, int64_t width, uint64_t seed) {
  Generator gen(seed);
  Tensor<uint8_t> images = Tensor<uint8_t>::empty({n, channels, height, width});
  for (int64_t i = 0; i < images.numel(); ++i) images.data()[i] = static_cast<uint8_t>(gen.randint(256));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % classes;
  std::vector<std::string> names;
  for (int64_t k = 0; k < classes; ++k) names.push_back("class" + std::to_string(k));
  return ImageDataset(images, labels, names);
}

std::string big_endian(uint32_t value) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[static_cast<size_t>(i)] = static_cast<char>(value >> (8 * (3 - i)));
  return out;
}

std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const std::string& data) {
  std::string out = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) out += big_endian(d);
  return out + data;
}

// Writes `bytes` gzip-compressed with zlib's gzip writer.
void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}


}  // namespace

// ---- dataset ------------------------------------------------------------------------------------------

TEST_CASE("ImageDataset holds images and labels, validates them, and makes subsets", "[data][dataset]") {
  const ImageDataset data = random_dataset(10, 3, 3, 4, 5, 1);
  REQUIRE(data.size() == 10);
  REQUIRE(data.channels() == 3);
  REQUIRE(data.height() == 4);
  REQUIRE(data.width() == 5);
  REQUIRE(data.num_classes() == 3);
  REQUIRE(data.class_counts() == std::vector<int64_t>{4, 3, 3});
  const Image seventh = data.image(7);
  REQUIRE(seventh.shape() == Shape{3, 4, 5});
  REQUIRE(std::equal(seventh.pixels.begin(), seventh.pixels.end(), data.images().data() + 7 * 60));

  const ImageDataset picked = data.subset({7, 2, 7});
  REQUIRE(picked.size() == 3);
  REQUIRE(picked.labels() == std::vector<int64_t>{1, 2, 1});
  REQUIRE(picked.image(0) == seventh);
  REQUIRE(picked.image(2) == seventh);
  REQUIRE(picked.image(1) == data.image(2));
  REQUIRE(picked.class_names() == data.class_names());

  REQUIRE_THROWS_WITH(data.image(10), Catch::Contains("out of range"));
  REQUIRE_THROWS_AS(ImageDataset(Tensor<uint8_t>::zeros({2, 1, 2, 2}), {0}, {"a"}), cct::ShapeError);
  REQUIRE_THROWS_WITH(ImageDataset(Tensor<uint8_t>::zeros({2, 1, 2, 2}), {0, 2}, {"a", "b"}),
                      Catch::Contains("label 2"));
  REQUIRE_THROWS_AS(ImageDataset(Tensor<uint8_t>::zeros({2, 2, 2}), {0, 0}, {"a"}), cct::ShapeError);
}

TEST_CASE("split is seeded, disjoint, complete and (by default) stratified", "[data][dataset]") {
  const ImageDataset data = random_dataset(100, 4, 1, 2, 2, 2);  // 25 per class
  auto [train, val] = data.split(0.2, 7);
  REQUIRE(train.size() == 80);
  REQUIRE(val.size() == 20);
  REQUIRE(val.class_counts() == std::vector<int64_t>{5, 5, 5, 5});
  REQUIRE(train.class_counts() == std::vector<int64_t>{20, 20, 20, 20});
  // Every image lands in exactly one part: compare the multisets of first pixels + label.
  std::multiset<std::vector<uint8_t>> all, parts;
  for (int64_t i = 0; i < data.size(); ++i) all.insert(data.image(i).pixels);
  for (int64_t i = 0; i < train.size(); ++i) parts.insert(train.image(i).pixels);
  for (int64_t i = 0; i < val.size(); ++i) parts.insert(val.image(i).pixels);
  REQUIRE(all == parts);

  auto [train_again, val_again] = data.split(0.2, 7);
  REQUIRE(val_again.images().to_vector() == val.images().to_vector());
  auto [train_other, val_other] = data.split(0.2, 8);
  REQUIRE(val_other.images().to_vector() != val.images().to_vector());

  auto [random_train, random_val] = data.split(0.3, 7, /*stratified=*/false);
  REQUIRE(random_val.size() == 30);
  REQUIRE(random_train.size() == 70);
  REQUIRE_THROWS_WITH(data.split(1.5, 0), Catch::Contains("val_fraction"));
}

// ---- CIFAR binary ------------------------------------------------------------------------------------------

TEST_CASE("CIFAR-10 binary batches round trip", "[data][cifar]") {
  TempDir dir;
  // Train: records spread over the five batch files; test: three records.
  const std::vector<int> train_labels = {3, 0, 9, 1, 4, 7};
  const std::vector<int> records_per_file = {2, 1, 1, 1, 1};
  int next = 0;
  for (int f = 0; f < 5; ++f) {
    std::string bytes;
    for (int r = 0; r < records_per_file[static_cast<size_t>(f)]; ++r, ++next)
      bytes += cifar_record({static_cast<uint8_t>(train_labels[static_cast<size_t>(next)])}, next);
    write_bytes(dir.file("data_batch_" + std::to_string(f + 1) + ".bin"), bytes);
  }
  write_bytes(dir.file("test_batch.bin"), cifar_record({5}, 100) + cifar_record({6}, 101) + cifar_record({2}, 102));

  const ImageDataset train = read_cifar10(dir.path.string(), true);
  REQUIRE(train.size() == 6);
  REQUIRE(train.channels() == 3);
  REQUIRE(train.height() == 32);
  REQUIRE(train.width() == 32);
  REQUIRE(train.labels() == std::vector<int64_t>{3, 0, 9, 1, 4, 7});
  REQUIRE(train.class_names() == cifar10_class_names());
  for (int64_t n = 0; n < 6; ++n)
    for (int i : {0, 1, 1023, 1024, 3071}) REQUIRE(train.image_data(n)[i] == static_cast<uint8_t>((i * 7 + n * 31) % 256));
  // Plane layout: pixel (c, y, x) is record byte 1 + c·1024 + y·32 + x.
  REQUIRE(train.image(1).at(2, 3, 4) == static_cast<uint8_t>(((2 * 1024 + 3 * 32 + 4) * 7 + 31) % 256));

  // batches.meta.txt overrides the names; the parent folder of cifar-10-batches-bin also works.
  TempDir parent;
  const fs::path nested = parent.path / "cifar-10-batches-bin";
  fs::create_directories(nested);
  fs::copy_file(dir.file("test_batch.bin"), nested / "test_batch.bin");
  write_bytes((nested / "batches.meta.txt").string(), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n");
  const ImageDataset test = read_cifar10(parent.path.string(), false);
  REQUIRE(test.size() == 3);
  REQUIRE(test.labels() == std::vector<int64_t>{5, 6, 2});
  REQUIRE(test.class_names().front() == "a");
  REQUIRE(test.class_names().back() == "j");
  REQUIRE(test.image(2).pixels[5] == static_cast<uint8_t>((5 * 7 + 102 * 31) % 256));
}

TEST_CASE("CIFAR-100 reads fine labels (or coarse ones) from 3074-byte records", "[data][cifar]") {
  TempDir dir;
  write_bytes(dir.file("train.bin"), cifar_record({4, 99}, 0) + cifar_record({19, 0}, 1) + cifar_record({0, 42}, 2));
  const ImageDataset fine = read_cifar100(dir.path.string(), true);
  REQUIRE(fine.labels() == std::vector<int64_t>{99, 0, 42});
  REQUIRE(fine.num_classes() == 100);
  REQUIRE(fine.class_names()[99] == "worm");
  REQUIRE(fine.class_names()[42] == "leopard");
  REQUIRE(fine.image(1).pixels[0] == static_cast<uint8_t>(31));
  const ImageDataset coarse = read_cifar100(dir.path.string(), true, /*coarse_labels=*/true);
  REQUIRE(coarse.labels() == std::vector<int64_t>{4, 19, 0});
  REQUIRE(coarse.num_classes() == 20);
  REQUIRE(cifar100_coarse_class_names().size() == 20);

  write_bytes(dir.file("test.bin"), cifar_record({3, 100}, 0));
  const std::string message = io_error_of([&] { read_cifar100(dir.path.string(), false); });
  REQUIRE(contains(message, "test.bin"));
  REQUIRE(contains(message, "label 100"));
  write_bytes(dir.file("test.bin"), cifar_record({3, 1}, 0).substr(0, 3073));
  REQUIRE(contains(io_error_of([&] { read_cifar100(dir.path.string(), false); }), "3074-byte records"));
}

TEST_CASE("CIFAR-10 bad files throw IoError naming the file and the problem", "[data][cifar]") {
  TempDir dir;
  const std::string good = cifar_record({1}, 0);
  write_bytes(dir.file("test_batch.bin"), good);

  SECTION("missing file") {
    const std::string message = io_error_of([&] { read_cifar10(dir.path.string(), true); });
    REQUIRE(contains(message, "missing"));
    REQUIRE(contains(message, "data_batch_1.bin"));
  }
  SECTION("truncated record") {
    write_bytes(dir.file("test_batch.bin"), good + good.substr(0, 1000));
    const std::string message = io_error_of([&] { read_cifar10(dir.path.string(), false); });
    REQUIRE(contains(message, "test_batch.bin"));
    REQUIRE(contains(message, "truncated"));
  }
  SECTION("label out of range") {
    write_bytes(dir.file("test_batch.bin"), good + cifar_record({11}, 1));
    const std::string message = io_error_of([&] { read_cifar10(dir.path.string(), false); });
    REQUIRE(contains(message, "test_batch.bin"));
    REQUIRE(contains(message, "record 1 has label 11"));
  }
  SECTION("empty file") {
    write_bytes(dir.file("test_batch.bin"), "");
    const std::string message = io_error_of([&] { read_cifar10(dir.path.string(), false); });
    REQUIRE(contains(message, "test_batch.bin"));
    REQUIRE(contains(message, "empty"));
  }
  SECTION("class-name file with the wrong count") {
    write_bytes(dir.file("batches.meta.txt"), "cat\ndog\n");
    REQUIRE(contains(io_error_of([&] { read_cifar10(dir.path.string(), false); }), "names 2 classes"));
  }
}

// ---- IDX ---------------------------------------------------------------------------------------------------

TEST_CASE("IDX files read plain and gzipped, with every malformed case rejected", "[data][idx]") {
  TempDir dir;
  std::string pixels;
  for (int i = 0; i < 3 * 4 * 5; ++i) pixels.push_back(static_cast<char>(i * 3));
  const std::string images = idx_bytes(0x08, {3, 4, 5}, pixels);
  const std::string labels = idx_bytes(0x08, {3}, std::string("\x07\x00\x09", 3));

  // Plain files with the dotted spelling, gzipped with the dashed one.
  write_bytes(dir.file("plain/train-images.idx3-ubyte"), images);
  write_bytes(dir.file("plain/train-labels.idx1-ubyte"), labels);
  fs::create_directories(dir.path / "gz");
  write_gzip(dir.file("gz/train-images-idx3-ubyte.gz"), images);
  write_gzip(dir.file("gz/train-labels-idx1-ubyte.gz"), labels);

  for (const std::string& sub : {std::string("plain"), std::string("gz")}) {
    INFO(sub);
    const ImageDataset data = read_mnist(dir.file(sub), true);
    REQUIRE(data.size() == 3);
    REQUIRE(data.channels() == 1);
    REQUIRE(data.height() == 4);
    REQUIRE(data.width() == 5);
    REQUIRE(data.labels() == std::vector<int64_t>{7, 0, 9});
    REQUIRE(data.class_names()[7] == "7");
    REQUIRE(data.image(2).at(0, 1, 2) == static_cast<uint8_t>((40 + 5 + 2) * 3));
  }
  // Two concatenated gzip members read as one file (as gunzip does).
  write_gzip(dir.file("first.gz"), images.substr(0, 20));
  write_gzip(dir.file("second.gz"), images.substr(20));
  write_bytes(dir.file("joined/train-images-idx3-ubyte.gz"),
              cct::io::read_file(dir.file("first.gz")) + cct::io::read_file(dir.file("second.gz")));
  REQUIRE(read_idx_images(dir.file("joined/train-images-idx3-ubyte.gz")).to_vector() ==
          read_idx_images(dir.file("plain/train-images.idx3-ubyte")).to_vector());
  const IdxArray raw = read_idx(dir.file("gz/train-images-idx3-ubyte.gz"));
  REQUIRE(raw.dims == std::vector<int64_t>{3, 4, 5});
  REQUIRE(raw.data.size() == 60);
  REQUIRE(read_fashion_mnist(dir.file("gz"), true).class_names()[9] == "Ankle boot");

  const std::string path = dir.file("bad/train-images-idx3-ubyte");
  auto error_for = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    const std::string message = io_error_of([&] { read_idx_images(path); });
    REQUIRE(contains(message, path));
    return message;
  };
  REQUIRE(contains(error_for("\x01\x02" + images.substr(2)), "magic"));
  REQUIRE(contains(error_for(idx_bytes(0x0D, {3, 4, 5}, pixels + pixels + pixels + pixels)), "element type 13"));
  REQUIRE(contains(error_for(images.substr(0, images.size() - 1)), "truncated"));
  REQUIRE(contains(error_for(images + "x"), "trailing bytes"));
  REQUIRE(contains(error_for(images.substr(0, 9)), "header"));
  REQUIRE(contains(error_for(labels), "has 1 dimensions, expected 3"));
  // Sizes whose product wraps around 2^64 to 0 (and so "matches" an empty body) or whose non-zero sizes
  // overflow the tensor's strides are refused before anything is allocated.
  REQUIRE(contains(error_for(idx_bytes(0x08, {512, 1u << 28, 1u << 28}, "")), "implausibly large"));
  REQUIRE(contains(error_for(idx_bytes(0x08, {0, 0xFFFFFFFFu, 0xFFFFFFFFu}, "")), "implausibly large"));

  // A gzip stream cut short, and gzip garbage.
  write_gzip(dir.file("cut.gz"), images);
  const std::string compressed = cct::io::read_file(dir.file("cut.gz"));
  write_bytes(dir.file("cut.gz"), compressed.substr(0, compressed.size() / 2));
  REQUIRE(contains(io_error_of([&] { read_idx(dir.file("cut.gz")); }), "truncated"));
  write_bytes(dir.file("garbage.gz"), std::string("\x1f\x8b", 2) + std::string(40, 'z'));
  REQUIRE(contains(io_error_of([&] { read_idx(dir.file("garbage.gz")); }), "garbage.gz"));

  // MNIST-level checks: image/label count mismatch, label out of range, missing files.
  write_bytes(dir.file("mismatch/t10k-images-idx3-ubyte"), images);
  write_bytes(dir.file("mismatch/t10k-labels-idx1-ubyte"), idx_bytes(0x08, {2}, std::string("\x01\x02", 2)));
  REQUIRE(contains(io_error_of([&] { read_mnist(dir.file("mismatch"), false); }), "holds 2 labels but"));
  write_bytes(dir.file("mismatch/t10k-labels-idx1-ubyte"), idx_bytes(0x08, {3}, std::string("\x01\x0a\x02", 3)));
  REQUIRE(contains(io_error_of([&] { read_mnist(dir.file("mismatch"), false); }), "is 10, outside [0, 10)"));
  REQUIRE(contains(io_error_of([&] { read_mnist(dir.file("nothing"), false); }), "missing file"));
}

TEST_CASE("real Fashion-MNIST from the Debian package", "[data][idx][real]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    CCT_SKIP_TEST(dir << " not found (apt-get install dataset-fashion-mnist)");
  }
  const ImageDataset test = read_fashion_mnist(dir, false);
  REQUIRE(test.size() == 10000);
  REQUIRE(test.images().shape() == Shape{10000, 1, 28, 28});
  REQUIRE(test.class_counts() == std::vector<int64_t>(10, 1000));
  const ImageDataset train = read_fashion_mnist(dir, true);
  REQUIRE(train.size() == 60000);
  REQUIRE(train.class_counts() == std::vector<int64_t>(10, 6000));
}

// ---- image files -------------------------------------------------------------------------------------------

TEST_CASE("write_png writes CHW and HWC atomically and read_image decodes them exactly", "[data][image_io]") {
  TempDir dir;
  const Image image = random_image(3, 5, 7, 3);
  write_png(dir.file("chw.png"), image);
  REQUIRE(read_image(dir.file("chw.png")) == image);
  std::vector<uint8_t> hwc(image.pixels.size());
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 35; ++i) hwc[static_cast<size_t>(i * 3 + c)] = image.pixels[static_cast<size_t>(c * 35 + i)];
  write_png(dir.file("hwc.png"), hwc.data(), 7, 5, 3, Layout::HWC);
  REQUIRE(read_image(dir.file("hwc.png")) == image);
  // Only the two PNGs exist: the temporary files were renamed away.
  REQUIRE(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);

  // Forced channel counts: stb's grayscale is (77 R + 150 G + 29 B) >> 8.
  const Image gray = read_image(dir.file("chw.png"), 1);
  REQUIRE(gray.channels == 1);
  const int expected = (77 * image.at(0, 2, 3) + 150 * image.at(1, 2, 3) + 29 * image.at(2, 2, 3)) >> 8;
  REQUIRE(gray.at(0, 2, 3) == expected);
  REQUIRE(read_image(dir.file("chw.png"), 3) == image);

  // A zero-length IDAT chunk (legal, and one stb_image 2.27 mishandles) changes nothing.
  {
    const std::string png = cct::io::read_file(dir.file("chw.png"));
    const size_t after_ihdr = 8 + 12 + 13;
    const std::string empty_idat("\0\0\0\0IDAT\x35\xaf\x06\x1e", 12);  // length 0, type, CRC of "IDAT"
    write_bytes(dir.file("empty_idat.png"), png.substr(0, after_ihdr) + empty_idat + png.substr(after_ihdr));
    REQUIRE(read_image(dir.file("empty_idat.png")) == image);
  }

  REQUIRE_THROWS_AS(write_png(dir.file("no/such/dir/x.png"), image), IoError);
  write_bytes(dir.file("broken.png"), "\x89PNG\r\n\x1a\n but not really");
  REQUIRE(contains(io_error_of([&] { read_image(dir.file("broken.png")); }), "broken.png"));
  REQUIRE(contains(io_error_of([&] { read_image(dir.file("absent.png")); }), "absent.png"));
}

TEST_CASE("image folders: sorted classes, resize, grayscale and every error case", "[data][image_folder]") {
  TempDir dir;
  const fs::path root = dir.path / "root";
  // Class folders created out of order; files too. A non-image file is ignored.
  const Image zebra_0 = random_image(3, 6, 4, 10), zebra_1 = random_image(3, 6, 4, 11), ant_0 = random_image(3, 6, 4, 12);
  fs::create_directories(root / "zebra");
  fs::create_directories(root / "ant");
  write_png((root / "zebra" / "b.png").string(), zebra_1);
  write_png((root / "zebra" / "a.PNG").string(), zebra_0);
  write_png((root / "ant" / "x.png").string(), ant_0);
  write_bytes((root / "ant" / "notes.txt").string(), "not an image");

  const ImageDataset data = read_image_folder(root.string());
  REQUIRE(data.class_names() == std::vector<std::string>{"ant", "zebra"});
  REQUIRE(data.labels() == std::vector<int64_t>{0, 1, 1});
  REQUIRE(data.images().shape() == Shape{3, 3, 6, 4});
  REQUIRE(data.image(0) == ant_0);
  REQUIRE(data.image(1) == zebra_0);
  REQUIRE(data.image(2) == zebra_1);

  ImageFolderOptions options;
  options.height = 3;
  options.width = 2;
  options.channels = 1;
  const ImageDataset small = read_image_folder(root.string(), options);
  REQUIRE(small.images().shape() == Shape{3, 1, 3, 2});
  // Halving with the antialiased bilinear (triangle) filter: output 1 of 3 reads inputs 1..4 with
  // weights (1, 3, 3, 1)/8; output 0 of 2 reads inputs 0..2 with weights (3, 3, 1)/7 (cut at the edge).
  const Image gray = read_image((root / "ant" / "x.png").string(), 1);
  const double row_w[4] = {1 / 8.0, 3 / 8.0, 3 / 8.0, 1 / 8.0}, col_w[3] = {3 / 7.0, 3 / 7.0, 1 / 7.0};
  double filtered = 0.0;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 3; ++x) filtered += row_w[y] * col_w[x] * gray.at(0, 1 + y, x);
  REQUIRE(std::abs(small.image(0).at(0, 1, 0) - filtered) <= 0.5 + 1e-4);

  SECTION("an image of another size without resizing") {
    write_png((root / "zebra" / "c.png").string(), random_image(3, 5, 4, 13));
    const std::string message = io_error_of([&] { read_image_folder(root.string()); });
    REQUIRE(contains(message, "c.png"));
    REQUIRE(contains(message, "4x5"));
    // With a target size it is simply resized.
    options.channels = 3;
    REQUIRE(read_image_folder(root.string(), options).size() == 4);
  }
  SECTION("a corrupt image names the file") {
    write_bytes((root / "zebra" / "corrupt.jpg").string(), "\xff\xd8\xff garbage");
    const std::string message = io_error_of([&] { read_image_folder(root.string()); });
    REQUIRE(contains(message, "corrupt.jpg"));
  }
  SECTION("a class folder without images") {
    fs::create_directories(root / "empty_class");
    REQUIRE(contains(io_error_of([&] { read_image_folder(root.string()); }), "empty_class"));
  }
  SECTION("missing root, and a root without class folders") {
    REQUIRE(contains(io_error_of([&] { read_image_folder((dir.path / "nope").string()); }), "nope"));
    fs::create_directories(dir.path / "flat");
    write_png((dir.path / "flat" / "a.png").string(), ant_0);
    REQUIRE(contains(io_error_of([&] { read_image_folder((dir.path / "flat").string()); }), "no class sub-folders"));
  }
}

TEST_CASE("the real CIFAR-10 JPEG copy reads completely and in class order", "[data][image_folder][real]") {
  const std::string archive = source_data_dir() + "/cifar10/cifar10-jpg.tar.gz";
  if (!fs::exists(archive)) {
    CCT_SKIP_TEST("../shared/data not found (looked for " << archive << ")");
  }
  TempDir dir;
  const std::string command = "tar xzf '" + archive + "' -C '" + dir.path.string() + "'";
  REQUIRE(std::system(command.c_str()) == 0);
  const std::vector<std::string> classes = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};
  const ImageDataset train = read_image_folder((dir.path / "train").string());
  const ImageDataset test = read_image_folder((dir.path / "test").string());
  REQUIRE(train.size() == 50000);
  REQUIRE(test.size() == 10000);
  REQUIRE(train.class_names() == classes);
  REQUIRE(test.class_names() == classes);
  REQUIRE(train.class_names() == cifar10_class_names());
  REQUIRE(train.images().shape() == Shape{50000, 3, 32, 32});
  REQUIRE(train.class_counts() == std::vector<int64_t>(10, 5000));
  REQUIRE(test.class_counts() == std::vector<int64_t>(10, 1000));
  REQUIRE(std::is_sorted(train.labels().begin(), train.labels().end()));
  REQUIRE(train.label(0) == 0);
  REQUIRE(train.label(49999) == 9);

  // The measured statistics agree with the published CIFAR-10 constants (JPEG moves them slightly).
  const Normalize measured = compute_mean_std(train);
  const Normalize published = Normalize::cifar10();
  for (size_t c = 0; c < 3; ++c) {
    INFO("channel " << c);
    REQUIRE(measured.mean[c] == Approx(published.mean[c]).margin(0.005));
    REQUIRE(measured.stddev[c] == Approx(published.stddev[c]).margin(0.005));
  }
}

// ---- normalisation and geometric transforms -------------------------------------------------------------------

TEST_CASE("Normalize applies (x/255 - mean)/std per channel and inverts", "[data][transforms]") {
  const Normalize norm({0.5f, 0.25f}, {0.5f, 0.25f});
  const uint8_t chw[4] = {0, 255, 51, 102};  // channel 0: (0, 255); channel 1: (51, 102)
  float out[4];
  norm.apply(chw, 2, 1, 2, out);
  REQUIRE(out[0] == Approx(-1.0f));
  REQUIRE(out[1] == Approx(1.0f));
  REQUIRE(out[2] == Approx((0.2f - 0.25f) / 0.25f));
  REQUIRE(out[3] == Approx((0.4f - 0.25f) / 0.25f));
  const Image back = norm.denormalize(out, 2, 1, 2);
  REQUIRE(back.pixels == std::vector<uint8_t>(chw, chw + 4));
  float plain[2];
  Normalize().apply(chw, 1, 1, 2, plain);
  REQUIRE(plain[1] == Approx(1.0f));
  REQUIRE(Normalize::cifar10().mean == std::vector<float>{0.4914f, 0.4822f, 0.4465f});
  REQUIRE(Normalize::cifar100().stddev == std::vector<float>{0.2675f, 0.2565f, 0.2761f});
  REQUIRE_THROWS_AS(norm.apply(chw, 3, 1, 1, out), cct::ShapeError);
  REQUIRE_THROWS_AS(Normalize({0.5f}, {0.0f}), cct::Error);

  // compute_mean_std: channel 0 holds 0 and 255 (mean 0.5, std 0.5), channel 1 is constant 51.
  Tensor<uint8_t> images = Tensor<uint8_t>::empty({2, 2, 1, 1});
  const uint8_t values[4] = {0, 51, 255, 51};
  std::copy(values, values + 4, images.data());
  const Normalize stats = compute_mean_std(ImageDataset(images, {0, 0}, {"x"}));
  REQUIRE(stats.mean[0] == Approx(0.5f));
  REQUIRE(stats.stddev[0] == Approx(0.5f));
  REQUIRE(stats.mean[1] == Approx(0.2f));
  REQUIRE(stats.stddev[1] == Approx(1.0f / 255.0f));  // a constant channel gets the floor of one level
}

TEST_CASE("crop, pad, flips and resize", "[data][transforms]") {
  const Image image = random_image(3, 6, 5, 20);
  Generator gen(1);

  // RandomCrop with padding 0 to the same size, and a flip with p 0, are the identity.
  Image same = image;
  RandomCrop{6, 5, 0}(same, gen);
  REQUIRE(same == image);
  RandomHorizontalFlip{0.0}(same, gen);
  REQUIRE(same == image);
  // Flipping twice is the identity; once mirrors.
  Image flipped = image;
  RandomHorizontalFlip{1.0}(flipped, gen);
  REQUIRE(flipped.at(1, 2, 0) == image.at(1, 2, 4));
  REQUIRE(flipped != image);
  hflip(flipped);
  REQUIRE(flipped == image);

  // pad + crop: zero border, interior preserved.
  const Image padded = pad(image, 2);
  REQUIRE(padded.shape() == Shape{3, 10, 9});
  REQUIRE(padded.at(0, 0, 0) == 0);
  REQUIRE(padded.at(2, 9, 8) == 0);
  REQUIRE(padded.at(2, 3, 4) == image.at(2, 1, 2));
  REQUIRE(crop(padded, 2, 2, 6, 5) == image);

  // RandomCrop(padding 4) is some window of the padded image, and every offset 0..8 occurs.
  const Image big = random_image(3, 32, 32, 21);
  const Image big_padded = pad(big, 4);
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Image cropped = big;
    Generator g(seed);
    RandomCrop{32, 32, 4}(cropped, g);
    REQUIRE(cropped.shape() == Shape{3, 32, 32});
    bool found = false;
    for (int64_t top = 0; top <= 8 && !found; ++top)
      for (int64_t left = 0; left <= 8 && !found; ++left)
        if (crop(big_padded, top, left, 32, 32) == cropped) {
          offsets.insert({top, left});
          found = true;
        }
    REQUIRE(found);
  }
  REQUIRE(offsets.size() > 60);  // 81 possible offsets
  REQUIRE_THROWS_AS(RandomCrop({40, 40, 2})(same, gen), cct::ShapeError);

  // Bilinear upsampling 2 → 4 (align_corners=False): outputs sit at input positions -0.25, 0.25, 0.75, 1.25.
  Image row(1, 1, 2);
  row.pixels = {0, 100};
  const Image wide = resize_bilinear(row, 1, 4);
  REQUIRE(wide.pixels == std::vector<uint8_t>{0, 25, 75, 100});
  const Image constant(3, 7, 9, 77);
  REQUIRE(resize_bilinear(constant, 4, 13) == Image(3, 4, 13, 77));
  REQUIRE(resize_bilinear(constant, 20, 3) == Image(3, 20, 3, 77));

  Image center = image;
  CenterCrop{2, 3}(center, gen);
  REQUIRE(center == crop(image, 2, 1, 2, 3));

  for (uint64_t seed = 0; seed < 50; ++seed) {
    Image resized = big;
    Generator g(seed);
    RandomResizedCrop{24, 20, 0.8, 1.0}(resized, g);
    REQUIRE(resized.shape() == Shape{3, 24, 20});
  }
  // A full-area, unit-ratio crop of a constant image stays constant.
  Image flat(3, 16, 16, 9);
  RandomResizedCrop{8, 8, 1.0, 1.0, 1.0, 1.0}(flat, gen);
  REQUIRE(flat == Image(3, 8, 8, 9));
}

// ---- augmentation ops ---------------------------------------------------------------------------------------------

namespace {
Image torchvision_fixture_image() {
  Image image(3, 5, 6);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 5; ++y)
      for (int64_t x = 0; x < 6; ++x) image.at(c, y, x) = static_cast<uint8_t>((c * 71 + y * 29 + x * 13 + ((x * y) % 7) * 17) % 256);
  return image;
}
}  // namespace

TEST_CASE("augmentation ops reproduce torchvision's uint8 results exactly", "[data][augment]") {
  const Image input = torchvision_fixture_image();
  // Generated by tests/fixtures/make_torchvision_fixtures.py with torchvision 0.14.1: _apply_op(image, name, magnitude,
  // InterpolationMode.NEAREST, fill=None) on the image built by torchvision_fixture_image().
  const std::vector<std::tuple<AugmentOp, double, std::vector<int>>> expected = {
      {AugmentOp::ShearX, 0.3,
        {0, 13, 26, 39, 52, 65, 29, 59, 89, 119, 149, 179, 105, 152, 199, 127, 174, 0, 151, 215, 160, 224, 169, 0,
         197, 159, 240, 202, 27, 0, 71, 84, 97, 110, 123, 136, 100, 130, 160, 190, 220, 250, 176, 223, 14, 198, 245, 0,
         222, 30, 231, 39, 240, 0, 12, 230, 55, 17, 98, 0, 142, 155, 168, 181, 194, 207, 171, 201, 231, 5, 35, 65,
         247, 38, 85, 13, 60, 0, 37, 101, 46, 110, 55, 0, 83, 45, 126, 88, 169, 0}},
      {AugmentOp::ShearY, -0.2,
        {0, 13, 26, 0, 0, 0, 29, 59, 26, 39, 52, 65, 58, 105, 89, 119, 149, 179, 87, 151, 152, 199, 127, 174,
         116, 197, 159, 160, 224, 169, 71, 84, 97, 0, 0, 0, 100, 130, 97, 110, 123, 136, 129, 176, 160, 190, 220, 250,
         158, 222, 223, 14, 198, 245, 187, 12, 230, 231, 39, 240, 142, 155, 168, 0, 0, 0, 171, 201, 168, 181, 194, 207,
         200, 247, 231, 5, 35, 65, 229, 37, 38, 85, 13, 60, 2, 83, 45, 46, 110, 55}},
      {AugmentOp::TranslateX, 2.9,
        {0, 0, 0, 13, 26, 39, 0, 0, 29, 59, 89, 119, 0, 0, 58, 105, 152, 199, 0, 0, 87, 151, 215, 160,
         0, 0, 116, 197, 159, 240, 0, 0, 71, 84, 97, 110, 0, 0, 100, 130, 160, 190, 0, 0, 129, 176, 223, 14,
         0, 0, 158, 222, 30, 231, 0, 0, 187, 12, 230, 55, 0, 0, 142, 155, 168, 181, 0, 0, 171, 201, 231, 5,
         0, 0, 200, 247, 38, 85, 0, 0, 229, 37, 101, 46, 0, 0, 2, 83, 45, 126}},
      {AugmentOp::TranslateY, -1.0,
        {29, 59, 89, 119, 149, 179, 58, 105, 152, 199, 127, 174, 87, 151, 215, 160, 224, 169, 116, 197, 159, 240, 202, 27,
         0, 0, 0, 0, 0, 0, 100, 130, 160, 190, 220, 250, 129, 176, 223, 14, 198, 245, 158, 222, 30, 231, 39, 240,
         187, 12, 230, 55, 17, 98, 0, 0, 0, 0, 0, 0, 171, 201, 231, 5, 35, 65, 200, 247, 38, 85, 13, 60,
         229, 37, 101, 46, 110, 55, 2, 83, 45, 126, 88, 169, 0, 0, 0, 0, 0, 0}},
      {AugmentOp::Rotate, 30.0,
        {0, 26, 39, 149, 179, 0, 13, 26, 119, 119, 127, 174, 29, 59, 152, 199, 224, 169, 58, 105, 215, 215, 240, 202,
         0, 87, 151, 159, 240, 0, 0, 97, 110, 220, 250, 0, 84, 97, 190, 190, 198, 245, 100, 130, 223, 14, 39, 240,
         129, 176, 30, 30, 55, 17, 0, 158, 222, 230, 55, 0, 0, 168, 181, 35, 65, 0, 155, 168, 5, 5, 13, 60,
         171, 201, 38, 85, 110, 55, 200, 247, 101, 101, 126, 88, 0, 229, 37, 45, 126, 0}},
      {AugmentOp::Rotate, -6.666666507720947,
        {0, 13, 26, 39, 52, 65, 29, 59, 89, 119, 149, 179, 58, 105, 152, 199, 127, 174, 87, 151, 215, 160, 224, 169,
         116, 197, 159, 240, 202, 27, 71, 84, 97, 110, 123, 136, 100, 130, 160, 190, 220, 250, 129, 176, 223, 14, 198, 245,
         158, 222, 30, 231, 39, 240, 187, 12, 230, 55, 17, 98, 142, 155, 168, 181, 194, 207, 171, 201, 231, 5, 35, 65,
         200, 247, 38, 85, 13, 60, 229, 37, 101, 46, 110, 55, 2, 83, 45, 126, 88, 169}},
      {AugmentOp::Brightness, 0.6,
        {0, 20, 41, 62, 83, 104, 46, 94, 142, 190, 238, 255, 92, 168, 243, 255, 203, 255, 139, 241, 255, 255, 255, 255,
         185, 255, 254, 255, 255, 43, 113, 134, 155, 176, 196, 217, 160, 208, 255, 255, 255, 255, 206, 255, 255, 22, 255, 255,
         252, 255, 48, 255, 62, 255, 255, 19, 255, 88, 27, 156, 227, 248, 255, 255, 255, 255, 255, 255, 255, 8, 56, 104,
         255, 255, 60, 136, 20, 96, 255, 59, 161, 73, 176, 88, 3, 132, 72, 201, 140, 255}},
      {AugmentOp::Brightness, -0.27,
        {0, 9, 18, 28, 37, 47, 21, 43, 64, 86, 108, 130, 42, 76, 110, 145, 92, 127, 63, 110, 156, 116, 163, 123,
         84, 143, 116, 175, 147, 19, 51, 61, 70, 80, 89, 99, 73, 94, 116, 138, 160, 182, 94, 128, 162, 10, 144, 178,
         115, 162, 21, 168, 28, 175, 136, 8, 167, 40, 12, 71, 103, 113, 122, 132, 141, 151, 124, 146, 168, 3, 25, 47,
         146, 180, 27, 62, 9, 43, 167, 27, 73, 33, 80, 40, 1, 60, 32, 91, 64, 123}},
      {AugmentOp::Color, -0.7,
        {39, 52, 65, 78, 91, 104, 68, 98, 128, 138, 168, 198, 97, 144, 171, 113, 146, 193, 126, 170, 129, 179, 138, 188,
         135, 111, 178, 154, 116, 66, 61, 74, 87, 100, 113, 126, 90, 120, 150, 159, 189, 219, 119, 166, 192, 58, 167, 214,
         148, 191, 74, 200, 83, 209, 156, 56, 199, 99, 61, 88, 82, 95, 108, 121, 134, 147, 111, 141, 171, 104, 134, 164,
         140, 187, 137, 79, 112, 159, 169, 136, 95, 145, 104, 154, 101, 77, 144, 120, 82, 109}},
      {AugmentOp::Color, 0.9,
        {0, 0, 0, 0, 0, 13, 0, 7, 37, 93, 123, 153, 6, 53, 126, 255, 101, 148, 35, 125, 255, 134, 255, 143,
         90, 255, 133, 255, 255, 0, 83, 96, 109, 122, 135, 148, 112, 142, 172, 228, 255, 255, 141, 188, 255, 0, 236, 255,
         170, 255, 0, 255, 0, 255, 225, 0, 255, 0, 0, 110, 218, 231, 244, 255, 255, 255, 247, 255, 255, 0, 0, 0,
         255, 255, 0, 92, 0, 0, 255, 0, 108, 0, 117, 0, 0, 90, 0, 133, 95, 245}},
      {AugmentOp::Contrast, 0.5,
        {0, 0, 0, 0, 13, 32, 0, 23, 68, 113, 158, 203, 22, 92, 163, 233, 125, 196, 65, 161, 255, 175, 255, 188,
         109, 230, 173, 255, 238, 0, 41, 61, 80, 100, 119, 139, 85, 130, 175, 220, 255, 255, 128, 199, 255, 0, 232, 255,
         172, 255, 0, 255, 0, 255, 215, 0, 255, 17, 0, 82, 148, 167, 187, 206, 226, 245, 191, 236, 255, 0, 0, 32,
         235, 255, 0, 62, 0, 25, 255, 0, 86, 4, 100, 17, 0, 59, 2, 124, 67, 188}},
      {AugmentOp::Contrast, -0.8,
        {103, 106, 109, 111, 114, 116, 109, 115, 121, 127, 133, 139, 115, 124, 134, 143, 129, 138, 121, 134, 146, 135, 148, 137,
         127, 143, 135, 151, 144, 109, 118, 120, 123, 125, 128, 131, 123, 129, 135, 141, 147, 153, 129, 139, 148, 106, 143, 152,
         135, 148, 109, 150, 111, 151, 141, 106, 149, 114, 107, 123, 132, 134, 137, 140, 142, 145, 138, 144, 150, 104, 110, 116,
         143, 153, 111, 120, 106, 115, 149, 111, 124, 113, 125, 114, 104, 120, 112, 129, 121, 137}},
      {AugmentOp::Sharpness, 0.9,
        {0, 12, 25, 39, 51, 65, 29, 59, 88, 127, 165, 179, 58, 105, 160, 223, 102, 174, 87, 159, 239, 143, 255, 169,
         116, 197, 159, 240, 202, 27, 71, 83, 97, 110, 123, 136, 100, 130, 178, 216, 254, 250, 129, 194, 255, 0, 208, 245,
         157, 255, 0, 255, 0, 240, 186, 12, 230, 55, 17, 98, 142, 155, 167, 181, 194, 207, 171, 219, 255, 0, 0, 65,
         200, 255, 0, 92, 0, 60, 229, 0, 108, 29, 126, 55, 2, 83, 45, 126, 88, 169}},
      {AugmentOp::Sharpness, -0.8,
        {0, 13, 26, 39, 52, 65, 29, 59, 89, 111, 134, 179, 58, 105, 144, 177, 148, 174, 87, 143, 193, 174, 193, 169,
         116, 197, 159, 240, 202, 27, 71, 84, 97, 110, 123, 136, 100, 130, 144, 166, 189, 250, 129, 160, 183, 86, 188, 245,
         158, 182, 86, 167, 87, 240, 187, 12, 230, 55, 17, 98, 142, 155, 168, 181, 194, 207, 171, 185, 183, 61, 67, 65,
         200, 199, 78, 78, 34, 60, 229, 77, 94, 60, 95, 55, 2, 83, 45, 126, 88, 169}},
      {AugmentOp::Posterize, 3.0,
        {0, 0, 0, 32, 32, 64, 0, 32, 64, 96, 128, 160, 32, 96, 128, 192, 96, 160, 64, 128, 192, 160, 224, 160,
         96, 192, 128, 224, 192, 0, 64, 64, 96, 96, 96, 128, 96, 128, 160, 160, 192, 224, 128, 160, 192, 0, 192, 224,
         128, 192, 0, 224, 32, 224, 160, 0, 224, 32, 0, 96, 128, 128, 160, 160, 192, 192, 160, 192, 224, 0, 32, 64,
         192, 224, 32, 64, 0, 32, 224, 32, 96, 32, 96, 32, 0, 64, 32, 96, 64, 160}},
      {AugmentOp::Solarize, 128.0,
        {0, 13, 26, 39, 52, 65, 29, 59, 89, 119, 106, 76, 58, 105, 103, 56, 127, 81, 87, 104, 40, 95, 31, 86,
         116, 58, 96, 15, 53, 27, 71, 84, 97, 110, 123, 119, 100, 125, 95, 65, 35, 5, 126, 79, 32, 14, 57, 10,
         97, 33, 30, 24, 39, 15, 68, 12, 25, 55, 17, 98, 113, 100, 87, 74, 61, 48, 84, 54, 24, 5, 35, 65,
         55, 8, 38, 85, 13, 60, 26, 37, 101, 46, 110, 55, 2, 83, 45, 126, 88, 86}},
      {AugmentOp::AutoContrast, 0.0,
        {0, 13, 27, 41, 55, 69, 30, 62, 94, 126, 158, 190, 61, 111, 161, 211, 134, 184, 92, 160, 228, 170, 238, 179,
         123, 209, 168, 255, 214, 28, 63, 77, 91, 105, 118, 132, 94, 126, 158, 190, 222, 255, 125, 175, 226, 2, 199, 249,
         156, 225, 19, 234, 28, 244, 187, 0, 233, 46, 5, 92, 145, 159, 172, 186, 199, 213, 175, 207, 238, 3, 34, 65,
         206, 255, 37, 86, 11, 60, 236, 36, 103, 45, 112, 55, 0, 84, 44, 129, 89, 173}},
      {AugmentOp::Equalize, 0.0,
        {0, 13, 26, 39, 52, 65, 29, 59, 89, 119, 149, 179, 58, 105, 152, 199, 127, 174, 87, 151, 215, 160, 224, 169,
         116, 197, 159, 240, 202, 27, 71, 84, 97, 110, 123, 136, 100, 130, 160, 190, 220, 250, 129, 176, 223, 14, 198, 245,
         158, 222, 30, 231, 39, 240, 187, 12, 230, 55, 17, 98, 142, 155, 168, 181, 194, 207, 171, 201, 231, 5, 35, 65,
         200, 247, 38, 85, 13, 60, 229, 37, 101, 46, 110, 55, 2, 83, 45, 126, 88, 169}},
      {AugmentOp::Invert, 0.0,
        {255, 242, 229, 216, 203, 190, 226, 196, 166, 136, 106, 76, 197, 150, 103, 56, 128, 81, 168, 104, 40, 95, 31, 86,
         139, 58, 96, 15, 53, 228, 184, 171, 158, 145, 132, 119, 155, 125, 95, 65, 35, 5, 126, 79, 32, 241, 57, 10,
         97, 33, 225, 24, 216, 15, 68, 243, 25, 200, 238, 157, 113, 100, 87, 74, 61, 48, 84, 54, 24, 250, 220, 190,
         55, 8, 217, 170, 242, 195, 26, 218, 154, 209, 145, 200, 253, 172, 210, 129, 167, 86}},
  };

  for (const auto& [op, magnitude, values] : expected) {
    INFO(augment_op_name(op) << " " << magnitude);
    Image image = input;
    apply_augment_op(image, op, magnitude);
    REQUIRE(std::vector<int>(image.pixels.begin(), image.pixels.end()) == values);
  }
}

TEST_CASE("augmentation ops on hand-computed cases", "[data][augment]") {
  const Image image = random_image(3, 8, 8, 30);
  // Invert twice is the identity; posterize keeps the top bits; solarize inverts at and above t.
  Image twice = image;
  augment::invert(twice);
  REQUIRE(twice.at(1, 2, 3) == 255 - image.at(1, 2, 3));
  augment::invert(twice);
  REQUIRE(twice == image);
  Image levels(1, 1, 4);
  levels.pixels = {0, 127, 128, 255};
  Image posterized = levels;
  augment::posterize(posterized, 2);
  REQUIRE(posterized.pixels == std::vector<uint8_t>{0, 64, 128, 192});
  Image solarized = levels;
  augment::solarize(solarized, 128.0);
  REQUIRE(solarized.pixels == std::vector<uint8_t>{0, 127, 127, 0});

  // Equalize: 1000 pixels, 400 × 10, 300 × 20, 300 × 30. step = (400 + 300) / 255 = 2, and
  // lut[v] = (count below v + step/2) / step: 10 → 0, 20 → 200, 30 → min(350, 255).
  Image histogram(1, 1, 1000);
  for (int i = 0; i < 1000; ++i) histogram.pixels[static_cast<size_t>(i)] = i < 400 ? 10 : i < 700 ? 20 : 30;
  augment::equalize(histogram);
  REQUIRE(histogram.pixels[0] == 0);
  REQUIRE(histogram.pixels[500] == 200);
  REQUIRE(histogram.pixels[999] == 255);

  // AutoContrast stretches [50, 100] to [0, 255]; a constant channel is left alone.
  Image narrow(2, 1, 3);
  narrow.pixels = {50, 75, 100, 9, 9, 9};
  augment::autocontrast(narrow);
  REQUIRE(narrow.pixels == std::vector<uint8_t>{0, 127, 255, 9, 9, 9});

  // Enhance ops at their end points: brightness 0 is black, factor 1 is the identity.
  Image dark = image;
  augment::brightness(dark, 0.0);
  REQUIRE(dark == Image(3, 8, 8, 0));
  for (AugmentOp op : {AugmentOp::Brightness, AugmentOp::Color, AugmentOp::Contrast, AugmentOp::Sharpness}) {
    Image unchanged = image;
    apply_augment_op(unchanged, op, 0.0);
    REQUIRE(unchanged == image);
  }
  // Contrast 0 gives the mean gray level (truncated) everywhere.
  Image flat_gray(1, 2, 2);
  flat_gray.pixels = {10, 20, 30, 41};
  augment::contrast(flat_gray, 0.0);
  REQUIRE(flat_gray == Image(1, 2, 2, 25));  // mean 25.25

  // Geometry: translate moves content right / down and fills; rotate 90 is a counter-clockwise quarter
  // turn; shear_x about the top-left corner reads row y shifted by the magnitude times y.
  Image moved = image;
  augment::translate_x(moved, 2, 7);
  REQUIRE(moved.at(0, 3, 2) == image.at(0, 3, 0));
  REQUIRE(moved.at(0, 3, 1) == 7);
  Image down = image;
  augment::translate_y(down, -1);
  REQUIRE(down.at(2, 0, 5) == image.at(2, 1, 5));
  REQUIRE(down.at(2, 7, 5) == 0);
  Image turned = image;
  augment::rotate(turned, 90.0);
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x) REQUIRE(turned.at(1, y, x) == image.at(1, x, 7 - y));
  Image sheared = image;
  augment::shear_x(sheared, 0.5);
  // Pixel centres measured from the top-left corner: output (y, x) reads input column x + 0.5·(y + 0.5),
  // rounded, i.e. shifted by 0, 1, 1, 2, 2, 3, 3, 4 for rows 0..7 (never a tie), then 0 past the edge.
  const int64_t shift[8] = {0, 1, 1, 2, 2, 3, 3, 4};
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x) {
      const int64_t source = x + shift[y];
      REQUIRE(sheared.at(0, y, x) == (source < 8 ? image.at(0, y, source) : 0));
    }
}

TEST_CASE("magnitude tables match torchvision's", "[data][augment]") {
  // Values printed from torchvision 0.14.1's _augmentation_space (float32 linspace, 10 and 31 bins).
  REQUIRE(detail::augment_magnitude(AugmentOp::Brightness, 5, 10, 32, 32).first == 0.5);
  REQUIRE(static_cast<float>(detail::augment_magnitude(AugmentOp::Color, 1, 10, 32, 32).first) == 0.09999999403953552f);
  REQUIRE(static_cast<float>(detail::augment_magnitude(AugmentOp::Color, 20, 31, 32, 32).first) == 0.5999999642372131f);
  REQUIRE(static_cast<float>(detail::augment_magnitude(AugmentOp::TranslateX, 9, 10, 32, 32).first) == 14.501510620117188f);
  REQUIRE(static_cast<float>(detail::augment_magnitude(AugmentOp::TranslateY, 9, 31, 32, 32).first) == 4.3504533767700195f);
  REQUIRE(static_cast<float>(detail::augment_magnitude(AugmentOp::Rotate, 2, 10, 32, 32).first) == 6.666666507720947f);
  REQUIRE(static_cast<float>(detail::augment_magnitude(AugmentOp::Solarize, 2, 10, 32, 32).first) == 198.3333282470703f);
  REQUIRE(detail::augment_magnitude(AugmentOp::Solarize, 9, 31, 32, 32).first == 178.5);
  const std::vector<int> bits10 = {8, 8, 7, 7, 6, 6, 5, 5, 4, 4};
  for (int k = 0; k < 10; ++k) REQUIRE(detail::augment_magnitude(AugmentOp::Posterize, k, 10, 32, 32).first == bits10[k]);
  REQUIRE(detail::augment_magnitude(AugmentOp::Posterize, 9, 31, 32, 32).first == 7.0);
  REQUIRE(detail::augment_magnitude(AugmentOp::ShearX, 3, 10, 32, 32).second);
  REQUIRE_FALSE(detail::augment_magnitude(AugmentOp::Solarize, 3, 10, 32, 32).second);
}

TEST_CASE("AutoAugment CIFAR-10 policy and RandAugment", "[data][augment]") {
  REQUIRE(AutoAugment::cifar10_policy().size() == 25);
  REQUIRE(RandAugment::ops().size() == 14);
  const Image image = random_image(3, 32, 32, 40);
  const AutoAugment autoaugment;

  // Sub-policy 0 is (Invert 0.1, Contrast 0.2 @6): draws (0.05, 0.9) apply only the inversion.
  Image inverted = image;
  autoaugment.apply_sub_policy(inverted, 0, {0.05, 0.9}, {1, 1});
  Image expected = image;
  augment::invert(expected);
  REQUIRE(inverted == expected);
  // Sub-policy 14 is (Solarize 0.5 @2, Invert 0.0): solarize at torchvision's threshold 198.333…
  Image solarized = image;
  autoaugment.apply_sub_policy(solarized, 14, {0.4, 0.5}, {0, 0});
  expected = image;
  augment::solarize(expected, 198.3333282470703);
  REQUIRE(solarized == expected);
  // Sub-policy 1 is (Rotate 0.7 @2, TranslateX 0.3 @9): sign bit 0 means a negative magnitude.
  Image rotated = image;
  autoaugment.apply_sub_policy(rotated, 1, {0.1, 0.2}, {0, 1});
  expected = image;
  augment::rotate(expected, -6.666666507720947);
  augment::translate_x(expected, 14);
  REQUIRE(rotated == expected);

  // Deterministic per seed, varied across seeds, always a valid image of the same shape.
  const RandAugment randaugment;
  std::set<std::vector<uint8_t>> distinct_auto, distinct_rand;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    Image a = image, b = image, c = image, d = image;
    Generator g1(seed), g2(seed), g3(seed), g4(seed);
    autoaugment(a, g1);
    autoaugment(b, g2);
    randaugment(c, g3);
    randaugment(d, g4);
    REQUIRE(a == b);
    REQUIRE(c == d);
    REQUIRE(a.shape() == image.shape());
    REQUIRE(c.shape() == image.shape());
    distinct_auto.insert(a.pixels);
    distinct_rand.insert(c.pixels);
  }
  REQUIRE(distinct_auto.size() > 20);
  REQUIRE(distinct_rand.size() > 30);
  // No ops: the identity.
  Image untouched = image;
  Generator g(5);
  RandAugment{0}(untouched, g);
  REQUIRE(untouched == image);
  // Grayscale images work too (Color is a no-op there).
  Image gray = random_image(1, 28, 28, 41);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Generator gs(seed);
    autoaugment(gray, gs);
    randaugment(gray, gs);
    REQUIRE(gray.shape() == Shape{1, 28, 28});
  }
}

TEST_CASE("RandomErasing erases one rectangle of the configured area", "[data][augment]") {
  std::vector<float> pixels(3 * 32 * 32, 5.0f);
  const FloatImageView view{pixels.data(), 3, 32, 32};
  Generator gen(3);
  RandomErasing{0.0}(view, gen);
  REQUIRE(std::count(pixels.begin(), pixels.end(), 5.0f) == 3 * 32 * 32);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::fill(pixels.begin(), pixels.end(), 5.0f);
    Generator g(seed);
    RandomErasing{1.0}(view, g);
    const auto erased = std::count(pixels.begin(), pixels.end(), 0.0f);
    REQUIRE(erased % 3 == 0);
    const double fraction = static_cast<double>(erased / 3) / 1024.0;
    // Area in [0.02, 0.33] of the image, up to rounding of the sides.
    REQUIRE(fraction >= 0.01);
    REQUIRE(fraction <= 0.40);
    // The erased pixels of channel 0 form a rectangle.
    int64_t top = 32, bottom = -1, left = 32, right = -1;
    for (int64_t y = 0; y < 32; ++y)
      for (int64_t x = 0; x < 32; ++x)
        if (pixels[static_cast<size_t>(y * 32 + x)] == 0.0f) {
          top = std::min(top, y), bottom = std::max(bottom, y), left = std::min(left, x), right = std::max(right, x);
        }
    REQUIRE((bottom - top + 1) * (right - left + 1) == erased / 3);
  }
  RandomErasing noisy{1.0};
  noisy.random_values = true;
  std::fill(pixels.begin(), pixels.end(), 5.0f);
  noisy(view, gen);
  REQUIRE(std::count(pixels.begin(), pixels.end(), 5.0f) < 3 * 32 * 32);
}

TEST_CASE("Gamma and Beta sampling have the right moments", "[data][augment]") {
  Generator gen(11);
  const int draws = 40000;
  for (double shape : {0.3, 0.8, 1.0, 2.5}) {
    INFO("Gamma(" << shape << ")");
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < draws; ++i) {
      const double x = sample_gamma(shape, gen);
      REQUIRE(x >= 0.0);
      sum += x, sum_sq += x * x;
    }
    const double mean = sum / draws, variance = sum_sq / draws - mean * mean;
    REQUIRE(mean == Approx(shape).epsilon(0.04));      // E = k
    REQUIRE(variance == Approx(shape).epsilon(0.08));  // Var = k
  }
  for (double alpha : {0.8, 1.0}) {
    INFO("Beta(" << alpha << ", " << alpha << ")");
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < draws; ++i) {
      const double x = sample_beta(alpha, alpha, gen);
      REQUIRE(x >= 0.0);
      REQUIRE(x <= 1.0);
      sum += x, sum_sq += x * x;
    }
    const double mean = sum / draws, variance = sum_sq / draws - mean * mean;
    REQUIRE(mean == Approx(0.5).margin(0.01));
    REQUIRE(variance == Approx(1.0 / (4.0 * (2.0 * alpha + 1.0))).epsilon(0.05));
  }
}

TEST_CASE("Mixup and CutMix mix images and produce soft targets", "[data][augment][mixup]") {
  // Hand-computed targets: K = 3, labels (0, 2), λ = 0.7, smoothing 0.1 → off = 1/30, on = 0.9 + 1/30.
  const Tensor<int64_t> labels = Tensor<int64_t>::from_vector({0, 2});
  const Tensor<float> targets = Mixup::mix_targets(labels, 3, 0.7, 0.1);
  const double off = 0.1 / 3, on = 0.9 + off;
  const std::vector<double> expected = {0.7 * on + 0.3 * off, off, 0.7 * off + 0.3 * on,
                                        0.7 * off + 0.3 * on, off, 0.7 * on + 0.3 * off};
  for (size_t i = 0; i < 6; ++i) REQUIRE(targets.data()[i] == Approx(expected[i]));

  // Images b are constant b + 1, so every mixed pixel tells where it came from.
  const int64_t batch = 4, classes = 10;
  auto make_batch = [&] {
    Tensor<float> images = Tensor<float>::empty({batch, 3, 8, 8});
    for (int64_t b = 0; b < batch; ++b) std::fill_n(images.data() + b * 192, 192, static_cast<float>(b + 1));
    return images;
  };
  const Tensor<int64_t> batch_labels = Tensor<int64_t>::from_vector({1, 4, 7, 9});

  MixupOptions only_mixup;
  only_mixup.cutmix_alpha = 0.0;
  only_mixup.num_classes = classes;
  Tensor<float> images = make_batch();
  Generator gen(4);
  MixupDecision decision;
  Tensor<float> soft = Mixup(only_mixup)(images, batch_labels, gen, &decision);
  REQUIRE_FALSE(decision.cutmix);
  REQUIRE(decision.lam > 0.0);
  REQUIRE(decision.lam < 1.0);
  REQUIRE(images.data()[0] == Approx(decision.lam * 1 + (1 - decision.lam) * 4));
  REQUIRE(images.data()[2 * 192 + 5] == Approx(decision.lam * 3 + (1 - decision.lam) * 2));
  REQUIRE(soft.shape() == Shape{batch, classes});
  for (int64_t b = 0; b < batch; ++b) {
    double row = 0;
    for (int64_t k = 0; k < classes; ++k) row += soft.data()[b * classes + k];
    REQUIRE(row == Approx(1.0));
  }
  REQUIRE(soft.data()[0 * classes + 1] == Approx(decision.lam * (0.9 + 0.01) + (1 - decision.lam) * 0.01));
  REQUIRE(soft.data()[0 * classes + 9] == Approx(decision.lam * 0.01 + (1 - decision.lam) * 0.91));

  MixupOptions only_cutmix;
  only_cutmix.mixup_alpha = 0.0;
  only_cutmix.num_classes = classes;
  only_cutmix.label_smoothing = 0.0;
  int boxes = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    images = make_batch();
    Generator g(seed);
    soft = Mixup(only_cutmix)(images, batch_labels, g, &decision);
    REQUIRE(decision.cutmix);
    // λ equals the fraction of each image that kept its own pixels.
    for (int64_t b = 0; b < batch; ++b) {
      const auto own = std::count(images.data() + b * 192, images.data() + (b + 1) * 192, static_cast<float>(b + 1));
      const auto taken = std::count(images.data() + b * 192, images.data() + (b + 1) * 192, static_cast<float>(batch - b));
      REQUIRE(own + taken == 192);
      REQUIRE(static_cast<double>(own) / 192.0 == Approx(decision.lam));
      REQUIRE(soft.data()[b * classes + batch_labels.data()[b]] == Approx(decision.lam));
    }
    if (decision.lam < 1.0) ++boxes;
  }
  REQUIRE(boxes > 30);

  // Both enabled: CutMix about half of the time; prob 0 never mixes (targets are smoothed one-hots).
  MixupOptions both;
  both.num_classes = classes;
  int cutmix_batches = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Generator g(seed);
    cutmix_batches += Mixup(both).sample(8, 8, g).cutmix ? 1 : 0;
  }
  REQUIRE(cutmix_batches > 70);
  REQUIRE(cutmix_batches < 130);
  both.prob = 0.0;
  images = make_batch();
  soft = Mixup(both)(images, batch_labels, gen, &decision);
  REQUIRE(decision.lam == 1.0);
  REQUIRE(images.to_vector() == make_batch().to_vector());
  REQUIRE(soft.data()[1] == Approx(0.91f));
  REQUIRE(soft.data()[0] == Approx(0.01f));
  REQUIRE_THROWS_AS(Mixup(MixupOptions{0.0, 0.0}), cct::Error);
}

// ---- DataLoader ------------------------------------------------------------------------------------------------

namespace {
LoaderOptions augmenting_options(int64_t batch_size, uint64_t seed) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.seed = seed;
  options.transform = {RandomCrop{8, 8, 2}, RandomHorizontalFlip{}, AutoAugment{}};
  options.normalize = Normalize({0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f});
  options.float_transforms = {RandomErasing{0.5}};
  return options;
}

std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> batches;
  Batch batch;
  while (loader.next(batch)) batches.push_back(batch);
  return batches;
}

bool same_batch(const Batch& a, const Batch& b) {
  return a.indices == b.indices && a.labels.to_vector() == b.labels.to_vector() &&
         a.images.to_vector() == b.images.to_vector() &&
         a.soft_targets.defined() == b.soft_targets.defined() &&
         (!a.soft_targets.defined() || a.soft_targets.to_vector() == b.soft_targets.to_vector());
}
}  // namespace

TEST_CASE("DataLoader without augmentation: order, normalisation, drop_last", "[data][loader]") {
  const ImageDataset data = random_dataset(10, 3, 3, 4, 4, 50);
  LoaderOptions options;
  options.batch_size = 4;
  options.shuffle = false;
  options.normalize = Normalize::cifar10();
  DataLoader loader(data, options);
  REQUIRE(loader.num_batches() == 3);
  const std::vector<Batch> batches = whole_epoch(loader, 0);
  REQUIRE(batches.size() == 3);
  REQUIRE(batches[2].size() == 2);
  REQUIRE(batches[2].images.shape() == Shape{2, 3, 4, 4});
  REQUIRE(batches[1].indices == std::vector<int64_t>{4, 5, 6, 7});
  REQUIRE(batches[1].labels.to_vector() == std::vector<int64_t>{1, 2, 0, 1});
  REQUIRE_FALSE(batches[0].soft_targets.defined());
  // Pixel (c=1, y=2, x=3) of sample 5 = batch 1, row 1.
  const float expected = (data.image(5).at(1, 2, 3) / 255.0f - 0.4822f) / 0.2435f;
  REQUIRE(batches[1].images.data()[1 * 48 + 1 * 16 + 2 * 4 + 3] == Approx(expected));
  Batch extra;
  REQUIRE_FALSE(loader.next(extra));

  options.drop_last = true;
  DataLoader dropping(data, options);
  REQUIRE(dropping.num_batches() == 2);
  REQUIRE(whole_epoch(dropping, 0).size() == 2);

  DataLoader unstarted(data, options);
  REQUIRE_THROWS_WITH(unstarted.next(extra), Catch::Contains("start_epoch"));
  options.batch_size = 0;
  REQUIRE_THROWS_AS(DataLoader(data, options), cct::Error);
}

TEST_CASE("Shards of an epoch: disjoint, complete, equal step counts when padded", "[data][loader][shard]") {
  for (const int64_t total : {1, 7, 8, 23}) {
    for (const int world : {1, 2, 3, 4}) {
      std::vector<int64_t> order(static_cast<size_t>(total));
      std::iota(order.begin(), order.end(), 100);
      std::vector<int64_t> padded_seen(static_cast<size_t>(total), 0), exact_seen(static_cast<size_t>(total), 0);
      int64_t padded_sum = 0;
      for (int rank = 0; rank < world; ++rank) {
        const std::vector<int64_t> padded = shard_order(order, {rank, world, true});
        REQUIRE(static_cast<int64_t>(padded.size()) == (total + world - 1) / world);  // the same on every rank
        padded_sum += static_cast<int64_t>(padded.size());
        for (const int64_t index : padded) ++padded_seen[static_cast<size_t>(index - 100)];
        const std::vector<int64_t> exact = shard_order(order, {rank, world, false});
        REQUIRE(static_cast<int64_t>(exact.size()) == shard_size(total, {rank, world, false}));
        for (const int64_t index : exact) ++exact_seen[static_cast<size_t>(index - 100)];
        if (!padded.empty()) REQUIRE(padded[0] == order[static_cast<size_t>(rank % total)]);  // strided: r, r+W, ...
      }
      for (int64_t i = 0; i < total; ++i) {
        REQUIRE(exact_seen[static_cast<size_t>(i)] == 1);  // evaluation: a partition
        REQUIRE(padded_seen[static_cast<size_t>(i)] >= 1);
      }
      REQUIRE(padded_sum - total < world);  // only as much padding as the last round needs
    }
  }
  REQUIRE_THROWS_AS(shard_size(10, {2, 2, true}), cct::Error);
}

TEST_CASE("A sharded DataLoader gives each rank its share of the same epoch order", "[data][loader][shard]") {
  const ImageDataset data = random_dataset(23, 4, 3, 8, 8, 52);
  LoaderOptions whole_options = augmenting_options(4, 7);
  DataLoader whole(data, whole_options);
  const std::vector<int64_t> order = whole.epoch_order(3);
  std::set<int64_t> covered;
  for (int rank = 0; rank < 2; ++rank) {
    LoaderOptions options = augmenting_options(2, 7);
    options.shard = {rank, 2, true};
    DataLoader shard(data, options);
    REQUIRE(shard.epoch_size() == 12);
    REQUIRE(shard.num_batches() == 6);
    const std::vector<Batch> batches = whole_epoch(shard, 3);
    REQUIRE(batches.size() == 6);
    for (size_t b = 0; b < batches.size(); ++b)
      for (size_t i = 0; i < batches[b].indices.size(); ++i) {
        const size_t position = (b * 2 + i) * 2 + static_cast<size_t>(rank);
        REQUIRE(batches[b].indices[i] == order[position % order.size()]);
        covered.insert(batches[b].indices[i]);
      }
    // A sample's augmentation depends on (seed, epoch, index), not on the rank or batch it lands in.
    const Batch unsharded = whole.make_batch(3, 0);
    if (rank == 0) REQUIRE(batches[0].images.to_vector()[0] == unsharded.images.to_vector()[0]);
  }
  REQUIRE(static_cast<int64_t>(covered.size()) == data.size());
}

TEST_CASE("DataLoader shuffles per epoch, reproducibly, seeing every sample once", "[data][loader]") {
  const ImageDataset data = random_dataset(23, 4, 3, 8, 8, 51);
  DataLoader loader(data, augmenting_options(5, 99));
  REQUIRE(loader.num_batches() == 5);
  const std::vector<Batch> epoch0 = whole_epoch(loader, 0);
  const std::vector<Batch> epoch1 = whole_epoch(loader, 1);
  for (const auto* epoch : {&epoch0, &epoch1}) {
    std::vector<int64_t> seen;
    for (const Batch& batch : *epoch) {
      seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
      for (int64_t i = 0; i < batch.size(); ++i)
        REQUIRE(batch.labels.data()[i] == data.label(batch.indices[static_cast<size_t>(i)]));
      REQUIRE(batch.images.size(2) == 8);
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(23);
    std::iota(all.begin(), all.end(), 0);
    REQUIRE(seen == all);
  }
  REQUIRE(loader.epoch_order(0) != loader.epoch_order(1));
  REQUIRE(loader.epoch_order(0) == loader.epoch_order(0));

  // Resuming: a fresh loader with the same seed reproduces epoch 1 exactly (order and augmentation),
  // and so does the synchronous make_batch; another seed does not.
  DataLoader resumed(data, augmenting_options(5, 99));
  const std::vector<Batch> again = whole_epoch(resumed, 1);
  REQUIRE(again.size() == epoch1.size());
  for (size_t b = 0; b < again.size(); ++b) {
    REQUIRE(same_batch(again[b], epoch1[b]));
    REQUIRE(same_batch(resumed.make_batch(1, static_cast<int64_t>(b)), epoch1[b]));
  }
  DataLoader other(data, augmenting_options(5, 100));
  REQUIRE_FALSE(same_batch(whole_epoch(other, 1)[0], epoch1[0]));

  // A sample's augmentation depends on (seed, epoch, sample) only: not on the batch size or the
  // number of threads.
  const int saved_threads = cct::num_threads();
  cct::set_num_threads(1);
  DataLoader small_batches(data, augmenting_options(3, 99));
  const std::vector<Batch> by_three = whole_epoch(small_batches, 1);
  cct::set_num_threads(saved_threads);
  std::vector<std::vector<float>> by_sample_five(23), by_sample_three(23);
  const int64_t numel = 3 * 8 * 8;
  for (const auto& [batches, out] : {std::make_pair(&epoch1, &by_sample_five), std::make_pair(&by_three, &by_sample_three)})
    for (const Batch& batch : *batches)
      for (int64_t i = 0; i < batch.size(); ++i)
        (*out)[static_cast<size_t>(batch.indices[static_cast<size_t>(i)])] =
            std::vector<float>(batch.images.data() + i * numel, batch.images.data() + (i + 1) * numel);
  REQUIRE(by_sample_five == by_sample_three);
}

TEST_CASE("DataLoader with Mixup/CutMix yields soft targets; set_mixup switches it off", "[data][loader][mixup]") {
  const ImageDataset data = random_dataset(16, 5, 3, 8, 8, 52);
  LoaderOptions options = augmenting_options(8, 7);
  options.mixup = MixupOptions{};
  DataLoader loader(data, options);
  REQUIRE(loader.options().mixup->num_classes == 5);
  int mixed = 0;
  for (int64_t epoch = 0; epoch < 4; ++epoch)
    for (const Batch& batch : whole_epoch(loader, epoch)) {
      REQUIRE(batch.soft_targets.shape() == Shape{8, 5});
      for (int64_t b = 0; b < 8; ++b) {
        double row = 0;
        for (int64_t k = 0; k < 5; ++k) row += batch.soft_targets.data()[b * 5 + k];
        REQUIRE(row == Approx(1.0));
      }
      if (batch.mix.lam < 1.0) ++mixed;
    }
  REQUIRE(mixed >= 6);
  // Reproducible through the synchronous path too.
  REQUIRE(same_batch(loader.make_batch(3, 1), whole_epoch(loader, 3)[1]));
  loader.set_mixup(std::nullopt);
  REQUIRE_FALSE(whole_epoch(loader, 4)[0].soft_targets.defined());
}

TEST_CASE("DataLoader rethrows worker exceptions and shuts down cleanly", "[data][loader]") {
  const ImageDataset data = random_dataset(40, 2, 1, 4, 4, 53);
  LoaderOptions options;
  options.batch_size = 4;
  options.shuffle = false;
  options.transform = {[](Image& image, Generator&) {
    if (image.at(0, 0, 0) == 255) throw cct::Error("poisoned sample");
  }};
  Tensor<uint8_t> pixels = data.images().clone();
  pixels.data()[13 * 16] = 255;  // sample 13 (batch 3) fails; make sure no other sample does
  for (int64_t i = 0; i < 40; ++i)
    if (i != 13 && pixels.data()[i * 16] == 255) pixels.data()[i * 16] = 0;
  DataLoader loader(ImageDataset(pixels, data.labels(), data.class_names()), options);
  loader.start_epoch(0);
  Batch batch;
  for (int b = 0; b < 3; ++b) REQUIRE(loader.next(batch));
  REQUIRE_THROWS_WITH(loader.next(batch), Catch::Contains("poisoned sample"));
  REQUIRE_FALSE(loader.next(batch));  // the epoch ended with the error
  // Restart, abandon mid-epoch, restart again, and destroy while the worker waits for room.
  loader.start_epoch(1);
  REQUIRE(loader.next(batch));
  loader.start_epoch(2);
  REQUIRE(loader.next(batch));
  REQUIRE(batch.epoch == 2);
  {
    DataLoader abandoned(data, LoaderOptions{});
    abandoned.start_epoch(0);
  }
}

// ---- a look at augmented samples ---------------------------------------------------------------------------------

TEST_CASE("an image grid of augmented samples decodes at the expected size", "[data][image_io]") {
  TempDir dir;
  const ImageDataset data = random_dataset(6, 3, 3, 16, 16, 54);
  DataLoader loader(data, augmenting_options(6, 5));
  const Batch batch = loader.make_batch(0, 0);
  std::vector<Image> tiles;
  std::vector<std::string> captions;
  for (int64_t i = 0; i < batch.size(); ++i) {
    tiles.push_back(loader.options().normalize.denormalize(batch.images.data() + i * 192, 3, 8, 8));
    captions.push_back(data.class_names()[static_cast<size_t>(batch.labels.data()[i])]);
  }
  tiles.push_back(data.image(0));  // a larger, untransformed tile
  captions.push_back("original");
  GridOptions grid;
  grid.columns = 4;
  grid.upscale = 3;
  grid.spacing = 2;
  write_image_grid(dir.file("grid.png"), tiles, captions, grid);
  const Image decoded = read_image(dir.file("grid.png"));
  // Tiles are 16·3 = 48 px plus a 12 px caption strip; 7 tiles in 4 columns make 2 rows.
  REQUIRE(decoded.channels == 3);
  REQUIRE(decoded.width == 4 * (48 + 2) + 2);
  REQUIRE(decoded.height == 2 * (48 + 12 + 2) + 2);
  // The first tile's top-left pixel, upscaled 3×, sits at (2, 2).
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t dy = 0; dy < 3; ++dy)
      for (int64_t dx = 0; dx < 3; ++dx) REQUIRE(decoded.at(c, 2 + dy, 2 + dx) == tiles[0].at(c, 0, 0));
  // Some caption ink (black) was drawn under the first tile.
  bool ink = false;
  for (int64_t y = 2 + 48; y < 2 + 48 + 12; ++y)
    for (int64_t x = 2; x < 2 + 48; ++x) ink = ink || (decoded.at(0, y, x) == 0 && decoded.at(1, y, x) == 0);
  REQUIRE(ink);
  REQUIRE_THROWS_AS(write_image_grid(dir.file("bad.png"), tiles, {"one caption"}), cct::Error);
}
