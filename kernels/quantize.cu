// Storage quantisation (gpu_depth.quantize): per-map finite min/max, then the 8/16-bit stored map.
// Between the two launches the host rounds min/max outwards (round_bound) and computes each scale.
//
// Launch: grid (blocks per map, number of maps), 1-D blocks, as in convert.cu.
#include "common.cuh"

// keys[2i], keys[2i+1]: order-preserving keys of the finite min and max of map i; the host sets them
// to GD_NO_MIN / GD_NO_MAX first (a map without a finite value keeps them).
template <typename In>
GD_DEV void finite_range(const In* in, const MapLayout* maps, u64* keys) {
    const int index = blockIdx.y;
    const MapLayout m = maps[index];
    u64 low = GD_NO_MIN, high = GD_NO_MAX;
    for (i64 row = blockIdx.x; row < m.height; row += gridDim.x) {
        const In* source = in + m.in_offset + row * m.in_pitch;
        for (i64 col = threadIdx.x; col < m.width; col += blockDim.x) {
            double value = gd_load(source + col);
            if (!gd_isfinite(value)) continue;
            u64 key = gd_key(value);
            low = key < low ? key : low;
            high = key > high ? key : high;
        }
    }
    if (low != GD_NO_MIN) {
        atomicMin(keys + 2 * index, low);
        atomicMax(keys + 2 * index + 1, high);
    }
}

// codes = clip(rint((value − low) · scale) + bottom, 0, top), 0 for non-finite values (holes);
// params[3i], params[3i+1], params[3i+2] = low, scale, bottom (IntMin: 1 when map i has holes, else 0).
template <typename In, typename Out>
GD_DEV void quantize(const In* in, Out* out, const MapLayout* maps, const double* params, double top) {
    const MapLayout m = maps[blockIdx.y];
    const double low = params[3 * blockIdx.y], scale = params[3 * blockIdx.y + 1], bottom = params[3 * blockIdx.y + 2];
    for (i64 row = blockIdx.x; row < m.height; row += gridDim.x) {
        const In* source = in + m.in_offset + row * m.in_pitch;
        Out* target = out + m.out_offset + row * m.out_pitch;
        for (i64 col = threadIdx.x; col < m.width; col += blockDim.x) {
            double value = gd_load(source + col);
            double code = gd_isfinite(value) ? gd_add(rint(gd_mul(gd_sub(value, low), scale)), bottom) : 0.0;
            target[col] = (Out)(code < 0.0 ? 0.0 : code > top ? top : code);
        }
    }
}

#define GD_RANGE(name, In) \
    extern "C" __global__ void name(const In* in, const MapLayout* maps, u64* keys) { finite_range<In>(in, maps, keys); }
GD_RANGE(finite_range_float16, Half)
GD_RANGE(finite_range_float32, Float)
GD_RANGE(finite_range_float64, double)

#define GD_QUANTIZE(name, In, Out)                                                                                  \
    extern "C" __global__ void name(const In* in, Out* out, const MapLayout* maps, const double* params, double top) { \
        quantize<In, Out>(in, out, maps, params, top);                                                              \
    }
GD_QUANTIZE(quantize_float16_uint8, Half, u8)
GD_QUANTIZE(quantize_float16_uint16, Half, u16)
GD_QUANTIZE(quantize_float32_uint8, Float, u8)
GD_QUANTIZE(quantize_float32_uint16, Float, u16)
