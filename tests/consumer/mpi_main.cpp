// The MPI side of the consumer project: a user's data-parallel program against cct::distributed.
#include <cstdio>

#include <cct/distributed/gradients.hpp>
#include <cct/distributed/mpi_world.hpp>
#include <cct/nn/linear.hpp>

int main(int argc, char** argv) {
  cct::distributed::MpiWorld world(&argc, &argv);
  cct::nn::Linear<float> layer(4, 2);
  cct::distributed::broadcast_parameters(layer, world);
  cct::distributed::GradientAverager average(layer);
  std::printf("rank %d of %d: %lld gradient values in one allreduce\n", world.rank(), world.size(),
              static_cast<long long>(average.numel()));
  return 0;
}
