// NaN-aware area (box) downscale, gpu_depth.resample.area_resize to the bit: the same sequential
// cumulative sums (NumPy's add.accumulate adds in order), the same edge interpolation and the same
// choice between the NaN-free and the NaN-aware formula per map.  So no ulp of tolerance is needed:
// each line's prefix sum runs in one thread in NumPy's order (a parallel tree sum would be faster for
// a single map but would round differently); the parallelism is across columns, rows and maps.
//
// Pass 1 (area_columns): one thread per input column integrates down the column (reads coalesced
// across threads) into out_height spans of valid sums and valid counts, stored transposed in the
// scratch.  Pass 2 (area_rows_*): one thread per output row integrates along the row (again coalesced)
// and writes the rounded mean.  Launch both with grid (blocks per map, number of maps).
#include "common.cuh"

// One line of NumPy's _integrate(values, axis, size): the integral of the piecewise-constant samples
// over each of `size` equal spans.  Line::sample(i, &sum, &count) reads sample i; Line::emit(k, sum,
// count) receives span k.  Sums and counts advance together, as area_resize integrates both.
template <typename Line>
GD_DEV void integrate(Line& line, i64 length, i64 size) {
    const double step = __ddiv_rn((double)length, (double)size);
    i64 next = 0;  // cumulative sums below cover samples [0, next)
    double sum_total = 0.0, count_total = 0.0, sum_before = 0.0, count_before = 0.0;
    for (i64 k = 0; k <= size; ++k) {
        const double edge = gd_mul((double)k, step);
        i64 whole = (i64)floor(edge);
        if (whole > length - 1) whole = length - 1;
        const double fraction = gd_sub(edge, (double)whole);
        for (; next < whole; ++next) {
            double sum, count;
            line.sample(next, &sum, &count);
            sum_total = next == 0 ? sum : gd_add(sum_total, sum);
            count_total = next == 0 ? count : gd_add(count_total, count);
        }
        double sum, count;
        line.sample(whole, &sum, &count);
        const double sum_edge = gd_add(sum_total, gd_mul(fraction, sum));
        const double count_edge = gd_add(count_total, gd_mul(fraction, count));
        if (k > 0) line.emit(k - 1, gd_sub(sum_edge, sum_before), gd_sub(count_edge, count_before));
        sum_before = sum_edge;
        count_before = count_edge;
    }
}

// Pass 1 line: a column of the float64 map; NaN counts 0 and adds 0.
struct Column {
    const double* values;  // top of the column
    i64 pitch;
    double* sums;  // this column's out_height spans in the scratch
    double* counts;
    bool has_nan;
    __device__ __forceinline__ void sample(i64 row, double* sum, double* count) {
        const double value = values[row * pitch];
        const bool valid = !gd_isnan(value);
        has_nan |= !valid;
        *sum = valid ? value : 0.0;
        *count = valid ? 1.0 : 0.0;
    }
    __device__ __forceinline__ void emit(i64 span, double sum, double count) {
        sums[span] = sum;
        counts[span] = count;
    }
};

// Pass 2 line: output row `row` read across the transposed scratch; emits the rounded mean.
template <typename Out>
struct Row {
    const double* sums;  // scratch of the map; element (column, row) at column * height + row
    const double* counts;
    i64 height;
    Out* target;
    bool has_nan;
    double ratio;  // input pixels per output pixel, for the NaN-free formula
    bool overflow;
    __device__ __forceinline__ void sample(i64 column, double* sum, double* count) {
        *sum = sums[column * height];
        *count = counts[column * height];
    }
    __device__ __forceinline__ void emit(i64 span, double sum, double count) {
        double mean = !has_nan ? gd_div(sum, ratio) : count > 0.0 ? gd_div(sum, count) : gd_double(GD_INVALID);
        overflow |= gd_store(target + span, mean);
    }
};

// values: float64 maps at in_offset (in_pitch, width, height); scratch: 2 · out_height · width doubles each.
extern "C" __global__ void area_columns(const double* values, double* scratch, const MapLayout* maps, int* flags) {
    const MapLayout m = maps[blockIdx.y];
    bool has_nan = false;
    for (i64 col = (i64)blockIdx.x * blockDim.x + threadIdx.x; col < m.width; col += (i64)gridDim.x * blockDim.x) {
        double* sums = scratch + m.tmp_offset + col * m.out_height;
        Column line = {values + m.in_offset + col, m.in_pitch, sums, sums + m.width * m.out_height, false};
        integrate(line, m.height, m.out_height);
        has_nan |= line.has_nan;
    }
    if (has_nan) atomicOr(flags + blockIdx.y, GD_FLAG_HAS_NAN);
}

template <typename Out>
GD_DEV void area_rows(const double* scratch, Out* out, const MapLayout* maps, int* flags) {
    const MapLayout m = maps[blockIdx.y];
    const bool has_nan = flags[blockIdx.y] & GD_FLAG_HAS_NAN;
    const double ratio = __ddiv_rn((double)(m.width * m.height), (double)(m.out_width * m.out_height));
    bool overflow = false;
    for (i64 row = (i64)blockIdx.x * blockDim.x + threadIdx.x; row < m.out_height; row += (i64)gridDim.x * blockDim.x) {
        const double* sums = scratch + m.tmp_offset + row;
        Out* target = out + m.out_offset + row * m.out_pitch;
        Row<Out> line = {sums, sums + m.width * m.out_height, m.out_height, target, has_nan, ratio, false};
        integrate(line, m.width, m.out_width);
        for (i64 col = m.out_width; col < m.out_pitch; ++col) gd_zero(target + col);
        overflow |= line.overflow;
    }
    if (overflow) atomicOr(flags + blockIdx.y, GD_FLAG_OVERFLOW);
}

#define GD_AREA_ROWS(name, Out)                                                                               \
    extern "C" __global__ void name(const double* scratch, Out* out, const MapLayout* maps, int* flags) { \
        area_rows<Out>(scratch, out, maps, flags);                                                        \
    }
GD_AREA_ROWS(area_rows_float16, Half)
GD_AREA_ROWS(area_rows_float32, Float)
