// Shared definitions of the gpu_depth kernels: integer types, the per-map layout table, IEEE double
// arithmetic with the NaN rules of the host CPU that runs NumPy, and exact conversions between
// binary16/binary32/binary64 written with integer operations (so host emulation runs the same code).
//
// Every kernel reproduces the NumPy path's operations in the same order, in float64, with explicit
// round-to-nearest intrinsics (no FMA contraction), and rounds once to the output format.
#pragma once

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#ifndef GD_DEV
#define GD_DEV __device__ __forceinline__
#endif

// The NaN an x86-64 CPU creates from non-NaN operands (0·inf, inf−inf): negative quiet NaN.  AArch64
// creates positive quiet NaN; the loader passes -DGD_DEFAULT_NAN=... to match the host CPU.
#ifndef GD_DEFAULT_NAN
#define GD_DEFAULT_NAN 0xFFF8000000000000ULL
#endif
// gpu_depth.mapping.INVALID (math.nan): positive quiet NaN.
#define GD_INVALID 0x7FF8000000000000ULL
#define GD_QUIET_BIT 0x0008000000000000ULL
#define GD_ABS_MASK 0x7FFFFFFFFFFFFFFFULL
#define GD_INF_BITS 0x7FF0000000000000ULL

// Where a map lives in a batch: element offsets into the batch buffers, pitches in elements.
struct MapLayout {
    i64 in_offset;   // first input element
    i64 in_pitch;    // input elements per row
    i64 width;       // input width and height
    i64 height;
    i64 out_offset;  // first output element
    i64 out_pitch;   // output elements per row (BytesPerRow / bytes per sample); padding is zeroed
    i64 out_width;   // output width and height (differ from the input's only when resampling)
    i64 out_height;
    i64 tmp_offset;  // first element of the resampler's scratch (2 · out_height · width doubles)
};

// Flags a kernel raises per map; the host then lets the NumPy path raise its exact DepthError.
#define GD_FLAG_OVERFLOW 1     // a rounded value is ±inf
#define GD_FLAG_GRAY_RANGE 2   // a float gray value lies outside [0, 1]
#define GD_FLAG_HAS_NAN 4      // the resampled map holds NaN (NumPy's area_resize takes its NaN path)

GD_DEV u64 gd_bits(double x) { return (u64)__double_as_longlong(x); }
GD_DEV double gd_double(u64 bits) { return __longlong_as_double((i64)bits); }
GD_DEV bool gd_isnan(double x) { return (gd_bits(x) & GD_ABS_MASK) > GD_INF_BITS; }
GD_DEV bool gd_isinf(double x) { return (gd_bits(x) & GD_ABS_MASK) == GD_INF_BITS; }
GD_DEV bool gd_isfinite(double x) { return (gd_bits(x) & GD_ABS_MASK) < GD_INF_BITS; }

// The NaN result of a ∘ b as the host CPU gives it: the first NaN operand made quiet, else the default NaN.
GD_DEV double gd_nan_of(double a, double b) {
    if (gd_isnan(a)) return gd_double(gd_bits(a) | GD_QUIET_BIT);
    if (gd_isnan(b)) return gd_double(gd_bits(b) | GD_QUIET_BIT);
    return gd_double(GD_DEFAULT_NAN);
}
GD_DEV double gd_add(double a, double b) { double r = __dadd_rn(a, b); return gd_isnan(r) ? gd_nan_of(a, b) : r; }
GD_DEV double gd_sub(double a, double b) { double r = __dsub_rn(a, b); return gd_isnan(r) ? gd_nan_of(a, b) : r; }
GD_DEV double gd_mul(double a, double b) { double r = __dmul_rn(a, b); return gd_isnan(r) ? gd_nan_of(a, b) : r; }
GD_DEV double gd_div(double a, double b) { double r = __ddiv_rn(a, b); return gd_isnan(r) ? gd_nan_of(a, b) : r; }

// ---- widening conversions (exact; NaN keeps sign and payload and becomes quiet, as x86 does) ----

GD_DEV double gd_from_f32(u32 h) {
    u64 sign = (u64)(h >> 31) << 63;
    u32 exponent = (h >> 23) & 0xFF, mantissa = h & 0x7FFFFF;
    if (exponent == 0xFF) return gd_double(sign | GD_INF_BITS | ((u64)mantissa << 29) | (mantissa ? GD_QUIET_BIT : 0));
    if (exponent == 0) {  // zero or subnormal: mantissa · 2^-149, exact in double
        double magnitude = (double)mantissa * gd_double((u64)(1023 - 149) << 52);
        return gd_double(sign | gd_bits(magnitude));
    }
    return gd_double(sign | ((u64)(exponent - 127 + 1023) << 52) | ((u64)mantissa << 29));
}

GD_DEV double gd_from_f16(u16 h) {
    u64 sign = (u64)(h >> 15) << 63;
    u32 exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    if (exponent == 0x1F) return gd_double(sign | GD_INF_BITS | ((u64)mantissa << 42) | (mantissa ? GD_QUIET_BIT : 0));
    if (exponent == 0) {  // zero or subnormal: mantissa · 2^-24
        double magnitude = (double)mantissa * gd_double((u64)(1023 - 24) << 52);
        return gd_double(sign | gd_bits(magnitude));
    }
    return gd_double(sign | ((u64)(exponent - 15 + 1023) << 52) | ((u64)mantissa << 42));
}

// ---- narrowing conversions: round once to nearest even; NaN keeps sign and top payload bits ----
// Integer code only: CuPy compiles with -ftz=true, which would flush float32 subnormals in a
// hardware double→float conversion.

// |x| (finite, as double bits) rounded to a binary format with `bits` fraction bits and exponent
// bias `bias`: the result's exponent and fraction fields, all-ones exponent (infinity) on overflow.
GD_DEV u64 gd_narrow(u64 magnitude, int bits, int bias) {
    const u64 infinity = (u64)(2 * bias + 1) << bits;
    const int exponent = (int)(magnitude >> 52) - 1023, smallest = 1 - bias;
    const u64 mantissa = (magnitude & 0xFFFFFFFFFFFFFULL) | (1ULL << 52);
    if (exponent > bias) return infinity;
    // Normal results keep bits + 1 significant bits; subnormal ones count units of 2^(smallest − bits).
    const int shift = 52 - bits + (exponent >= smallest ? 0 : smallest - exponent);
    if (shift > 54) return 0;  // below half the smallest subnormal
    u64 kept = mantissa >> shift;
    const u64 rest = mantissa & ((1ULL << shift) - 1), half = 1ULL << (shift - 1);
    if (rest > half || (rest == half && (kept & 1))) kept += 1;
    // The implicit bit lands in the exponent field; a carry out of the fraction moves it up, up to infinity.
    const u64 result = exponent >= smallest ? ((u64)(exponent + bias - 1) << bits) + kept : kept;
    return result >= infinity ? infinity : result;
}

GD_DEV u32 gd_to_f32(double x) {
    const u64 bits = gd_bits(x), magnitude = bits & GD_ABS_MASK;
    const u32 sign = (u32)(bits >> 32) & 0x80000000u;
    if (magnitude > GD_INF_BITS) return sign | 0x7FC00000u | (u32)((magnitude >> 29) & 0x7FFFFF);
    if (magnitude == GD_INF_BITS) return sign | 0x7F800000u;
    return sign | (u32)gd_narrow(magnitude, 23, 127);
}

GD_DEV u16 gd_to_f16(double x) {
    const u64 bits = gd_bits(x), magnitude = bits & GD_ABS_MASK;
    const u16 sign = (u16)((bits >> 48) & 0x8000);
    if (magnitude > GD_INF_BITS) return sign | 0x7E00 | (u16)((magnitude >> 42) & 0x3FF);
    if (magnitude == GD_INF_BITS) return sign | 0x7C00;
    return sign | (u16)gd_narrow(magnitude, 10, 15);
}

GD_DEV bool gd_f16_is_inf(u16 h) { return (h & 0x7FFF) == 0x7C00; }
GD_DEV bool gd_f32_is_inf(u32 h) { return (h & 0x7FFFFFFFu) == 0x7F800000u; }

// ---- sample types: load as double, store a double rounded to the type ----
// Half and float samples travel as their bit patterns (u16, u32), so no hardware NaN rule applies.

struct Half { u16 bits; };
struct Float { u32 bits; };

GD_DEV double gd_load(const Half* p) { return gd_from_f16(p->bits); }
GD_DEV double gd_load(const Float* p) { return gd_from_f32(p->bits); }
GD_DEV double gd_load(const double* p) { return *p; }

// Store x rounded to the sample type; returns true when the rounded value is infinite (overflow).
GD_DEV bool gd_store(Half* p, double x) { u16 h = gd_to_f16(x); p->bits = h; return gd_f16_is_inf(h); }
GD_DEV bool gd_store(Float* p, double x) { u32 f = gd_to_f32(x); p->bits = f; return gd_f32_is_inf(f); }
GD_DEV bool gd_store(double* p, double x) { *p = x; return false; }

GD_DEV void gd_zero(Half* p) { p->bits = 0; }
GD_DEV void gd_zero(Float* p) { p->bits = 0; }
GD_DEV void gd_zero(double* p) { *p = 0.0; }

// Order-preserving keys of doubles for unsigned 64-bit atomicMin/atomicMax (NaN never enters).
GD_DEV u64 gd_key(double x) {
    u64 bits = gd_bits(x);
    return (bits >> 63) ? ~bits : bits | 0x8000000000000000ULL;
}
GD_DEV double gd_unkey(u64 key) { return gd_double((key >> 63) ? key & GD_ABS_MASK : ~key); }
#define GD_NO_MIN 0xFFFFFFFFFFFFFFFFULL  // initial min key: no finite value seen
#define GD_NO_MAX 0ULL
