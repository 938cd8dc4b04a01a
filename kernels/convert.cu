// Gray or metric maps → depth/disparity rows (BytesPerRow pitch, zeroed padding), one launch per batch.
//
// Launch: grid (blocks per map, number of maps), 1-D blocks.  blockIdx.y picks the map in the
// MapLayout table and in the MapMapping table; blocks stride over its rows, threads over the columns
// of a row (coalesced).  Each map carries its own mapping, so one launch covers maps of many mappings.
#include "common.cuh"

// How float values become the native quantity (DepthMapping._native).
#define GD_METRES 0    // x / scale; invalid unless > 0 and finite
#define GD_GRAY 1      // a + x · b, gray checked against [0, 1]
#define GD_INVERTED 2  // a + (1 − x) · b
#define GD_RELATIVE 3  // a + (x − low) / (high − low) · b with the map's finite low/high
#define GD_DISPARITY_PX 4  // (x / scale + a) / b; invalid unless x > 0 and the result > 0 and finite

// A map's mapping (kernel_plan.MAP_MAPPING): its lookup table among the batch's tables, or how its
// float values are evaluated.
struct MapMapping {
    i64 table_offset;  // first entry of the map's lookup table in the concatenated tables (integer codes)
    int kind;
    int reciprocal;  // 1 when the output quantity differs from the native one: 1 / native
    double a, b, scale;
};

// Integer codes: out = table[code], the exact table of the map's DepthMapping.lookup_table (bit patterns).
// Each thread loads GD_UNROLL codes a block width apart before using any of them, so enough bytes
// are in flight to cover memory latency with 1- or 2-byte loads (coalesced across the warp).
#define GD_UNROLL 8
template <typename In, typename Out>
GD_DEV void gather(const In* in, const Out* tables, Out* out, const MapLayout* maps, const MapMapping* mappings) {
    const MapLayout m = maps[blockIdx.y];
    const Out* table = tables + mappings[blockIdx.y].table_offset;
    const i64 step = blockDim.x;
    for (i64 row = blockIdx.x; row < m.out_height; row += gridDim.x) {
        const In* source = in + m.in_offset + row * m.in_pitch;
        Out* target = out + m.out_offset + row * m.out_pitch;
        for (i64 first = threadIdx.x; first < m.out_pitch; first += GD_UNROLL * step) {
            In codes[GD_UNROLL];
#pragma unroll
            for (int k = 0; k < GD_UNROLL; ++k) {
                const i64 col = first + k * step;
                codes[k] = col < m.out_width ? source[col] : (In)0;
            }
#pragma unroll
            for (int k = 0; k < GD_UNROLL; ++k) {
                const i64 col = first + k * step;
                if (col < m.out_pitch) target[col] = col < m.out_width ? __ldg(table + codes[k]) : (Out)0;
            }
        }
    }
}

template <typename In>
GD_DEV double native_value(const In* p, const MapMapping& f, double low, double high, int* flag) {
    double x = gd_load(p);
    if (f.kind == GD_METRES) {
        double metres = gd_div(x, f.scale);
        return metres > 0.0 && !gd_isinf(metres) ? metres : gd_double(GD_INVALID);
    }
    if (f.kind == GD_DISPARITY_PX) {
        double inverse = gd_div(gd_add(gd_div(x, f.scale), f.a), f.b);
        return x > 0.0 && inverse > 0.0 && !gd_isinf(inverse) ? inverse : gd_double(GD_INVALID);
    }
    double t;
    if (f.kind == GD_RELATIVE) {
        if (!gd_isfinite(x)) return gd_double(GD_INVALID);  // NaN propagates unchanged through a + t · b
        t = high > low ? gd_div(gd_sub(x, low), gd_sub(high, low)) : 0.0;
    } else {
        if (x < 0.0 || x > 1.0) *flag |= GD_FLAG_GRAY_RANGE;
        t = f.kind == GD_INVERTED ? gd_sub(1.0, x) : x;
    }
    return gd_add(f.a, gd_mul(t, f.b));
}

// Float maps: DepthMapping.evaluate in float64, rounded once to Out (or kept as double to resample).
// ranges: per map (min key, max key) of its finite inputs, read only by maps of GD_RELATIVE.
template <typename In, typename Out>
GD_DEV void evaluate(const In* in, Out* out, const MapLayout* maps, const MapMapping* mappings, const u64* ranges,
                     int* flags) {
    const int index = blockIdx.y;
    const MapLayout m = maps[index];
    const MapMapping f = mappings[index];
    double low = 0.0, high = 0.0;
    if (f.kind == GD_RELATIVE && ranges[2 * index] != GD_NO_MIN) {
        low = gd_unkey(ranges[2 * index]);
        high = gd_unkey(ranges[2 * index + 1]);
    }
    int flag = 0;
    for (i64 row = blockIdx.x; row < m.out_height; row += gridDim.x) {
        const In* source = in + m.in_offset + row * m.in_pitch;
        Out* target = out + m.out_offset + row * m.out_pitch;
        for (i64 col = threadIdx.x; col < m.out_pitch; col += blockDim.x) {
            if (col >= m.out_width) {
                gd_zero(target + col);
                continue;
            }
            double value = native_value(source + col, f, low, high, &flag);
            if (f.reciprocal) value = gd_div(1.0, value);
            if (gd_store(target + col, value)) flag |= GD_FLAG_OVERFLOW;
        }
    }
    if (flag) atomicOr(flags + index, flag);
}

#define GD_GATHER(name, In, Out)                                                                   \
    extern "C" __global__ void name(const In* in, const Out* tables, Out* out, const MapLayout* maps, \
                                    const MapMapping* mappings) {                                     \
        gather<In, Out>(in, tables, out, maps, mappings);                                             \
    }
GD_GATHER(gather_uint8_float16, u8, u16)
GD_GATHER(gather_uint8_float32, u8, u32)
GD_GATHER(gather_uint8_float64, u8, double)
GD_GATHER(gather_uint16_float16, u16, u16)
GD_GATHER(gather_uint16_float32, u16, u32)
GD_GATHER(gather_uint16_float64, u16, double)

#define GD_EVALUATE(name, In, Out)                                                                  \
    extern "C" __global__ void name(const In* in, Out* out, const MapLayout* maps, const MapMapping* mappings, \
                                    const u64* ranges, int* flags) {                                        \
        evaluate<In, Out>(in, out, maps, mappings, ranges, flags);                                          \
    }
GD_EVALUATE(evaluate_float16_float16, Half, Half)
GD_EVALUATE(evaluate_float16_float32, Half, Float)
GD_EVALUATE(evaluate_float16_float64, Half, double)
GD_EVALUATE(evaluate_float32_float16, Float, Half)
GD_EVALUATE(evaluate_float32_float32, Float, Float)
GD_EVALUATE(evaluate_float32_float64, Float, double)
GD_EVALUATE(evaluate_float64_float16, double, Half)
GD_EVALUATE(evaluate_float64_float32, double, Float)
GD_EVALUATE(evaluate_float64_float64, double, double)
