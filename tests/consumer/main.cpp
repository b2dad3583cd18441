// The header-only consumer (cct::cct): the checks every consumer program makes (checks.hpp).
#include "checks.hpp"

int main() {
  const bool gradients_ok = consumer::gradients_correct();
  const bool images_ok = consumer::png_round_trip("cct_consumer_header_only");
  return gradients_ok && images_ok ? 0 : 1;
}
