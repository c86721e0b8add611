package intlist

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	got, err := Parse(" 4, 32,64 ", nil, "an integer")
	require.NoError(t, err)
	require.Equal(t, []int{4, 32, 64}, got)

	_, err = Parse("4,x", nil, "an integer")
	require.EqualError(t, err, `"x" is not an integer`)
	_, err = Parse("2, 0", func(n int) bool { return n >= 1 }, "a batch size ≥ 1")
	require.EqualError(t, err, `" 0" is not a batch size ≥ 1`, "the item as written")
	_, err = Parse("", nil, "an integer")
	require.EqualError(t, err, `"" is not an integer`)
}
