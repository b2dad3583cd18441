// The MPI side of the consumer project: a user's data-parallel program against cct::distributed. Its
// model is a module of the user's own (what the gradient averager sees is the parameter tree, whatever
// the layers); a library layer such as Linear would add the GEMM kernels to this unit's compile time.
#include <cstdio>

#include <cct/distributed/gradients.hpp>
#include <cct/distributed/mpi_world.hpp>

struct Scale : cct::nn::Module<float> {
  cct::Tensor<float>& weight = register_parameter("weight", cct::Tensor<float>::ones({4, 2}));
  std::string type_name() const override { return "Scale"; }
};

int main(int argc, char** argv) {
  cct::distributed::MpiWorld world(&argc, &argv);
  Scale layer;
  cct::distributed::broadcast_parameters(layer, world);
  cct::distributed::GradientAverager average(layer);
  std::printf("rank %d of %d: %lld gradient values in one allreduce\n", world.rank(), world.size(),
              static_cast<long long>(average.numel()));
  return 0;
}
