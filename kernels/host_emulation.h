// Host emulation of the CUDA features the gpu_depth kernels use, so the same kernels/*.cu sources
// compile as C++ (g++ -std=c++17 -ffp-contract=off) and run on the CPU for bit-exact tests.
//
// A launch runs every thread of every block one after the other (threadIdx/blockIdx become loops):
// valid because the kernels never synchronise threads or share memory, and their atomics commute.
// GD_EXPORT(symbol, kernel) defines `extern "C" void symbol(gx, gy, bx, void** params)`, where params
// points at each argument as cuLaunchKernel's kernelParams do, and `symbol_const()`, a mask of the
// parameters pointing at const data (what the stream simulator of tests/fake_cupy counts as reads).
#pragma once

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#define GD_DEV static inline
#define __global__
#define __device__
#define __forceinline__ inline

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

static inline long long __double_as_longlong(double x) {
    long long bits;
    std::memcpy(&bits, &x, sizeof bits);
    return bits;
}
static inline double __longlong_as_double(long long bits) {
    double x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}
// SSE2 doubles round each operation to nearest even; -ffp-contract=off keeps a·b + c unfused.
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
using std::floor;
using std::rint;

template <typename T>
static inline T __ldg(const T* p) { return *p; }
template <typename T>
static inline T atomicOr(T* p, T v) { T old = *p; *p = old | v; return old; }
template <typename T>
static inline T atomicMin(T* p, T v) { T old = *p; *p = v < old ? v : old; return old; }
template <typename T>
static inline T atomicMax(T* p, T v) { T old = *p; *p = v > old ? v : old; return old; }

template <typename... A, std::size_t... I>
static void gd_emulate_thread(void (*kernel)(A...), void** params, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<A>*>(params[I])...);
}

template <typename... A>
static void gd_emulate(void (*kernel)(A...), unsigned gx, unsigned gy, unsigned bx, void** params) {
    gridDim = {gx, gy, 1};
    blockDim = {bx, 1, 1};
    for (unsigned y = 0; y < gy; ++y)
        for (unsigned x = 0; x < gx; ++x)
            for (unsigned t = 0; t < bx; ++t) {
                blockIdx = {x, y, 0};
                threadIdx = {t, 0, 0};
                gd_emulate_thread(kernel, params, std::index_sequence_for<A...>{});
            }
}

// Bit i set when parameter i points at const data (the kernel only reads it).
template <typename... A>
static unsigned long long gd_read_only(void (*)(A...)) {
    unsigned long long mask = 0, bit = 1;
    ((mask |= std::is_pointer_v<A> && std::is_const_v<std::remove_pointer_t<A>> ? bit : 0, bit <<= 1), ...);
    return mask;
}

#define GD_EXPORT(symbol, kernel)                                                                   \
    extern "C" void symbol(unsigned gx, unsigned gy, unsigned bx, void** params) {                  \
        gd_emulate(kernel, gx, gy, bx, params);                                                     \
    }                                                                                               \
    extern "C" unsigned long long symbol##_const() { return gd_read_only(kernel); }
