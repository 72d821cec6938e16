package cbor

import "math"

// float16to64 widens an IEEE 754 half-precision float.
func float16to64(h uint16) float64 {
	sign := uint64(h>>15) << 63
	exp := uint64(h>>10) & 0x1f
	mant := uint64(h & 0x3ff)
	switch exp {
	case 0: // zero or subnormal: mant × 2^-24, exact in float64
		return math.Float64frombits(sign | math.Float64bits(float64(mant)*0x1p-24))
	case 0x1f: // infinity or NaN (the payload moves to the top of the wider mantissa)
		return math.Float64frombits(sign | 0x7ff<<52 | mant<<42)
	}
	return math.Float64frombits(sign | (exp-15+1023)<<52 | mant<<42)
}

// Float16To64 widens an IEEE 754 half-precision float, as the decoder does:
// for decoders of their own that read heads themselves.
func Float16To64(h uint16) float64 { return float16to64(h) }

// AppendFloat appends f in the shortest of half, single and double precision
// that holds it exactly; every NaN becomes the half-precision quiet NaN
// f9 7e00. Floats stay floats: 1.0 is f9 3c00, never the integer 1.
func AppendFloat(dst []byte, f float64) []byte {
	if f != f {
		return append(dst, 0xe0|aiFloat16, 0x7e, 0x00)
	}
	bits := math.Float64bits(f)
	sign := bits >> 63
	exp := int(bits>>52&0x7ff) - 1023 // unbiased
	mant := bits & (1<<52 - 1)
	switch {
	case exp == -1023 && mant == 0: // ±0
		return append(dst, 0xe0|aiFloat16, byte(sign<<7), 0)
	case exp == 1024: // ±infinity (NaN was handled above)
		return append(dst, 0xe0|aiFloat16, byte(sign<<7|0x7c), 0)
	case exp >= -14 && exp <= 15 && mant&(1<<42-1) == 0: // a normal half
		h := sign<<15 | uint64(exp+15)<<10 | mant>>42
		return append(dst, 0xe0|aiFloat16, byte(h>>8), byte(h))
	case exp >= -24 && exp < -14: // a subnormal half, m × 2^-24, if exact
		sig := mant | 1<<52
		if shift := uint(28 - exp); sig&(1<<shift-1) == 0 {
			h := sign<<15 | sig>>shift
			return append(dst, 0xe0|aiFloat16, byte(h>>8), byte(h))
		}
	}
	switch {
	case exp >= -126 && exp <= 127 && mant&(1<<29-1) == 0: // a normal single
		s := sign<<31 | uint64(exp+127)<<23 | mant>>29
		return append(dst, 0xe0|aiFloat32, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
	case exp >= -149 && exp < -126: // a subnormal single, m × 2^-149, if exact
		sig := mant | 1<<52
		if shift := uint(-97 - exp); sig&(1<<shift-1) == 0 {
			s := sign<<31 | sig>>shift
			return append(dst, 0xe0|aiFloat32, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
		}
	}
	return append(dst, 0xe0|aiFloat64, byte(bits>>56), byte(bits>>48), byte(bits>>40), byte(bits>>32),
		byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits))
}
