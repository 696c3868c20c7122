package schema

import (
	"strings"
	"testing"
)

func TestJSONBProblem(t *testing.T) {
	t.Parallel()
	const (
		nul       = `must not contain the NUL character (\u0000)`
		surrogate = unpairedSurrogate
	)
	tests := []struct {
		name string
		json string
		want string
	}{
		{"plain", `{"a":"b","n":[1,2,{"c":null}]}`, ""},
		{"ordinary escapes", `{"a":"\"\\\/\b\f\n\r\t\u00e9\u20AC"}`, ""},
		{"escaped backslash then u0000", `{"a":"\\u0000"}`, ""},
		{"two escaped backslashes then u0000", `{"a":"\\\\u0000"}`, ""},
		{"surrogate pair", `{"a":"\ud83d\ude00"}`, ""},
		{"surrogate pair in upper case", `{"a":"\uD83D\uDE00"}`, ""},
		{"NUL", `{"a":"x\u0000y"}`, nul},
		{"NUL in a key", `{"\u0000":1}`, nul},
		{"escaped backslash then NUL", `{"a":"\\\u0000"}`, nul},
		{"lone high surrogate at the end", `{"a":"\ud83d"}`, surrogate},
		{"high surrogate then a character", `{"a":"\ud83dx"}`, surrogate},
		{"high surrogate then another escape", `{"a":"\ud83d\n"}`, surrogate},
		{"high surrogate then a non-surrogate escape", `{"a":"\ud83d\u0041"}`, surrogate},
		{"two high surrogates", `{"a":"\ud83d\ud83d"}`, surrogate},
		{"lone low surrogate", `{"a":"\ude00"}`, surrogate},
		{"high surrogate ends one string, low starts the next", `["\ud83d","\ude00"]`, surrogate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := jsonbProblem([]byte(tt.json)); got != tt.want {
				t.Errorf("jsonbProblem(%s) = %q, want %q", tt.json, got, tt.want)
			}
		})
	}
}

func TestJSONBProblem_Numbers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		number string
		ok     bool
	}{
		{"0", true},
		{"-12.50", true},
		{"1e1000", true},
		{"1E-1000", true},
		{"-2.5e+3", true},
		{"1e1001", false},
		{"1e-1001", false},
		{"1e99999999999999999999", false},
		{"0." + strings.Repeat("1", 16383), true},
		{"0." + strings.Repeat("1", 16384), false},
		{"0." + strings.Repeat("1", 15384) + "e-1000", false},
		{strings.Repeat("9", 1001), true},
		{"-" + strings.Repeat("9", 1001) + ".5", true},
		{strings.Repeat("9", 1002), false},
		{strings.Repeat("9", 10000), false},
		{strings.Repeat("9", 1000) + "e1", true},
		{strings.Repeat("9", 1000) + "e2", false},
		{strings.Repeat("9", 2000) + "e-999", true},
	}
	for _, tt := range tests {
		name := tt.number
		if len(name) > 30 {
			name = name[:10] + "…" + name[len(name)-10:]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := `{"a":[1,"1e99999",` + tt.number + `,{"b":` + tt.number + `}]}`
			want := ""
			if !tt.ok {
				want = numberOutOfRange
			}
			if got := jsonbProblem([]byte(doc)); got != want {
				t.Errorf("jsonbProblem = %q, want %q", got, want)
			}
		})
	}
}
