# Tiny data sets for the command-line tests, written in seconds (sourced, not run):
#   write_cifar_batch FILE RECORDS FIRST_LABEL   a CIFAR-10 binary batch: <label byte><3072 pixel bytes>
#                                                per record, each image one grey level set by its label
#   write_tiny_cifar DIR                         data_batch_1..5 of 8 records and a test_batch of 10
#   write_tiny_trec DIR                          DIR/trec/{train_5500,TREC_10}.label: two classes that
#                                                differ in their first word (200 and 20 questions)
write_cifar_batch() {
  local file=$1 records=$2 label=$3 i
  : > "$file"
  for ((i = 0; i < records; i++)); do
    local l=$(((label + i) % 10))
    printf "\\x$(printf %02x $l)" >> "$file"
    head -c 3072 /dev/zero | tr '\000' "\\$(printf %03o $((l * 20 + i)))" >> "$file"
  done
}
write_tiny_cifar() {
  local dir=$1 b
  mkdir -p "$dir"
  for b in 1 2 3 4 5; do write_cifar_batch "$dir/data_batch_$b.bin" 8 "$b"; done
  write_cifar_batch "$dir/test_batch.bin" 10 0
}
write_tiny_trec() {
  local dir=$1
  mkdir -p "$dir/trec"
  awk 'BEGIN { for (i = 0; i < 200; i++) print (i % 2 ? "HUM:ind who wrote book " i " ?" : "LOC:city where is town " i " ?") }' \
    > "$dir/trec/train_5500.label"
  awk 'BEGIN { for (i = 0; i < 20; i++) print (i % 2 ? "HUM:ind who wrote book " i " ?" : "LOC:city where is town " i " ?") }' \
    > "$dir/trec/TREC_10.label"
}
