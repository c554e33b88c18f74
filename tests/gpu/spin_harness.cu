// A kernel that keeps the GPU busy for a given time. The speed section queues it before a
// batch of timed launches, so the launches wait behind it and then run back to back: the
// CUDA events around the batch measure the GPU's time, not how fast Python can launch.
#include <cuda_runtime.h>

namespace {

__global__ void Spin(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

}  // namespace

extern "C" {

// Queues the spin on `stream` (a CUDA stream handle, 0 = the legacy default stream) for ns
// nanoseconds; returns a cudaError_t.
int sg2tf_spin(unsigned long long ns, void* stream) {
  Spin<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(ns);
  return cudaGetLastError();
}

}  // extern "C"
