// Hole filling (gpu_depth.core.holes.fill_holes) to the bit: a NaN sample takes the farther of the
// nearest valid samples before and after it on its line (either one at a line's end); samples are
// copied, never computed.  fill_lines_* does every row (columns = 0) or every column (columns = 1) of
// each map, one thread per line; run it on the rows, then on the result's columns.
//
// Launch: grid (blocks, number of maps), 1-D blocks; threads stride over the lines of map blockIdx.y.
// in and out are laid out as the MapLayout says (padding is not touched); they must not overlap.
#include "common.cuh"

template <typename T>
GD_DEV bool gd_valid(const T& v) { return !gd_isnan(gd_load(&v)); }

template <typename T>
GD_DEV void fill_lines(const T* in, T* out, const MapLayout* maps, int columns, int larger) {
    const MapLayout m = maps[blockIdx.y];
    const i64 lines = columns ? m.width : m.height, length = columns ? m.height : m.width;
    const i64 in_along = columns ? m.in_pitch : 1, in_across = columns ? 1 : m.in_pitch;
    const i64 out_along = columns ? m.out_pitch : 1, out_across = columns ? 1 : m.out_pitch;
    const i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 line = (i64)blockIdx.x * blockDim.x + threadIdx.x; line < lines; line += step) {
        const T* source = in + m.in_offset + line * in_across;
        T* target = out + m.out_offset + line * out_across;
        // Backwards: each sample becomes the nearest valid sample at or after it (stays NaN if none).
        bool seen = false;
        T next = source[(length - 1) * in_along];
        for (i64 i = length - 1; i >= 0; --i) {
            const T v = source[i * in_along];
            if (gd_valid(v)) { next = v; seen = true; }
            target[i * out_along] = seen ? next : v;
        }
        // Forwards: a hole with a valid sample before it takes the farther of that one and the one after.
        seen = false;
        T last = next;
        for (i64 i = 0; i < length; ++i) {
            const T v = source[i * in_along];
            if (gd_valid(v)) { last = v; seen = true; continue; }
            if (!seen) continue;
            const T after = target[i * out_along];
            if (!gd_valid(after)) { target[i * out_along] = last; continue; }
            const double a = gd_load(&last), b = gd_load(&after);
            target[i * out_along] = (larger ? b > a : b < a) ? after : last;
        }
    }
}

#define GD_FILL(name, T)                                                                              \
    extern "C" __global__ void name(const T* in, T* out, const MapLayout* maps, int columns, int larger) { \
        fill_lines<T>(in, out, maps, columns, larger);                                                \
    }
GD_FILL(fill_lines_float16, Half)
GD_FILL(fill_lines_float32, Float)
