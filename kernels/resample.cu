// NaN-aware area (box) downscale, gpu_depth.resample.area_resize to the bit: each output span sums
// its taps in NumPy's order (pixel k of the span times the length of that pixel inside the span,
// k ascending, from 0.0), the NaN-free or NaN-aware formula chosen per map as NumPy chooses it.  So no
// ulp of tolerance is needed; every span is independent, so every span gets its own thread.
//
// Pass 1 (area_columns): spans down the columns, one thread per (span, column), reads coalesced
// across columns; valid sums and valid counts go to the scratch transposed (column-major).
// Pass 2 (area_rows_*): spans along the rows, one thread per (row, span), reads coalesced across
// rows; writes the rounded mean.  Launch both with grid (blocks per map, number of maps).
#include "common.cuh"

// NumPy's _integrate for span `span` of `size` equal spans of a line of `length` samples:
// Line::sample(i, &sum, &count) reads sample i (sum and count advance together, as area_resize
// integrates both).
template <typename Line>
GD_DEV void integrate_span(Line& line, i64 length, i64 size, i64 span, double* sum, double* count) {
    const double step = __ddiv_rn((double)length, (double)size);
    const double low = gd_mul((double)span, step), high = gd_mul((double)(span + 1), step);
    const i64 start = (i64)floor(low), taps = (length + size - 1) / size + 1;
    double total_sum = 0.0, total_count = 0.0;
    for (i64 tap = 0; tap < taps; ++tap) {
        const i64 pixel = start + tap;
        const double right = high < (double)(pixel + 1) ? high : (double)(pixel + 1);
        const double left = low > (double)pixel ? low : (double)pixel;
        double covered = gd_sub(right, left);
        if (covered < 0.0 || pixel >= length) covered = 0.0;
        double value, valid;
        line.sample(pixel < length ? pixel : length - 1, &value, &valid);
        total_sum = gd_add(total_sum, gd_mul(covered, value));
        total_count = gd_add(total_count, gd_mul(covered, valid));
    }
    *sum = total_sum;
    *count = total_count;
}

// Pass 1 line: a column of the float64 map; NaN counts 0 and adds 0.
struct Column {
    const double* values;  // top of the column
    i64 pitch;
    bool has_nan;
    __device__ __forceinline__ void sample(i64 row, double* sum, double* count) {
        const double value = values[row * pitch];
        const bool valid = !gd_isnan(value);
        has_nan |= !valid;
        *sum = valid ? value : 0.0;
        *count = valid ? 1.0 : 0.0;
    }
};

// Pass 2 line: one row of pass 1's result, read across the transposed scratch.
struct Row {
    const double* sums;  // element (column, row) of the map's scratch at column * height + row
    const double* counts;
    i64 height;
    __device__ __forceinline__ void sample(i64 column, double* sum, double* count) {
        *sum = sums[column * height];
        *count = counts[column * height];
    }
};

// values: float64 maps at in_offset (in_pitch, width, height); scratch: 2 · out_height · width doubles each.
extern "C" __global__ void area_columns(const double* values, double* scratch, const MapLayout* maps, int* flags) {
    const MapLayout m = maps[blockIdx.y];
    double* sums = scratch + m.tmp_offset;
    double* counts = sums + m.width * m.out_height;
    bool has_nan = false;
    for (i64 item = (i64)blockIdx.x * blockDim.x + threadIdx.x; item < m.width * m.out_height;
         item += (i64)gridDim.x * blockDim.x) {
        const i64 column = item % m.width, span = item / m.width;
        Column line = {values + m.in_offset + column, m.in_pitch, false};
        integrate_span(line, m.height, m.out_height, span, sums + column * m.out_height + span,
                       counts + column * m.out_height + span);
        has_nan |= line.has_nan;
    }
    if (has_nan) atomicOr(flags + blockIdx.y, GD_FLAG_HAS_NAN);
}

template <typename Out>
GD_DEV void area_rows(const double* scratch, Out* out, const MapLayout* maps, int* flags) {
    const MapLayout m = maps[blockIdx.y];
    const bool has_nan = flags[blockIdx.y] & GD_FLAG_HAS_NAN;
    const double ratio = __ddiv_rn((double)(m.width * m.height), (double)(m.out_width * m.out_height));
    const double* sums = scratch + m.tmp_offset;
    bool overflow = false;
    for (i64 item = (i64)blockIdx.x * blockDim.x + threadIdx.x; item < m.out_height * m.out_width;
         item += (i64)gridDim.x * blockDim.x) {
        const i64 row = item % m.out_height, span = item / m.out_height;
        Row line = {sums + row, sums + m.width * m.out_height + row, m.out_height};
        double sum, count;
        integrate_span(line, m.width, m.out_width, span, &sum, &count);
        const double mean = !has_nan ? gd_div(sum, ratio) : count > 0.0 ? gd_div(sum, count) : gd_double(GD_INVALID);
        Out* target = out + m.out_offset + row * m.out_pitch;
        overflow |= gd_store(target + span, mean);
        if (span == 0) {
            for (i64 col = m.out_width; col < m.out_pitch; ++col) gd_zero(target + col);
        }
    }
    if (overflow) atomicOr(flags + blockIdx.y, GD_FLAG_OVERFLOW);
}

#define GD_AREA_ROWS(name, Out)                                                                               \
    extern "C" __global__ void name(const double* scratch, Out* out, const MapLayout* maps, int* flags) { \
        area_rows<Out>(scratch, out, maps, flags);                                                        \
    }
GD_AREA_ROWS(area_rows_float16, Half)
GD_AREA_ROWS(area_rows_float32, Float)
