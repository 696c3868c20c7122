package redis

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg := Config{URL: "redis://127.0.0.1:6379/0", ConsumerGroup: "g", ConsumerName: "c"}
	cfg.setDefaults()
	want := Config{
		URL:             "redis://127.0.0.1:6379/0",
		ConsumerGroup:   "g",
		ConsumerName:    "c",
		Consumers:       DefaultConsumers,
		MaxIdleTime:     DefaultMaxIdleTime,
		ClaimInterval:   DefaultClaimInterval,
		NackResendSleep: DefaultNackResendSleep,
		BlockTime:       DefaultBlockTime,
	}
	if cfg != want {
		t.Errorf("after setDefaults\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	set := Config{Consumers: 3, MaxIdleTime: time.Minute, ClaimInterval: time.Second, NackResendSleep: time.Millisecond, BlockTime: time.Second}
	got := set
	got.setDefaults()
	if got != set {
		t.Errorf("setDefaults changed set fields: got %+v, want %+v", got, set)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() Config {
		cfg := Config{URL: "redis://127.0.0.1:6379/0", ConsumerGroup: "g", ConsumerName: "c"}
		cfg.setDefaults()
		return cfg
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // in the error
	}{
		{"no URL", func(c *Config) { c.URL = "" }, "URL is required"},
		{"bad scheme", func(c *Config) { c.URL = "http://127.0.0.1:6379" }, "URL"},
		{"no group", func(c *Config) { c.ConsumerGroup = "" }, "ConsumerGroup is required"},
		{"no name", func(c *Config) { c.ConsumerName = "" }, "ConsumerName is required"},
		{"no consumers", func(c *Config) { c.Consumers = -1 }, "Consumers"},
		{"negative MaxIdleTime", func(c *Config) { c.MaxIdleTime = -time.Second }, "MaxIdleTime"},
		{"negative ClaimInterval", func(c *Config) { c.ClaimInterval = -time.Second }, "ClaimInterval"},
		{"hot nack loop", func(c *Config) { c.NackResendSleep = -1 }, "NackResendSleep"},
		{"negative BlockTime", func(c *Config) { c.BlockTime = -time.Second }, "BlockTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error mentioning %q", err, tc.want)
			}
			if _, err := New(cfg, nil); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestConfigValidateHidesPassword(t *testing.T) {
	t.Parallel()
	cfg := Config{URL: "redis://user:s3cret@127.0.0.1:port/0", ConsumerGroup: "g", ConsumerName: "c"}
	cfg.setDefaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted an invalid port")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestConfigValidateReportsAllErrors(t *testing.T) {
	t.Parallel()
	err := Config{}.Validate()
	if err == nil {
		t.Fatal("Validate accepted the zero Config")
	}
	for _, field := range []string{"URL", "ConsumerGroup", "ConsumerName", "Consumers", "MaxIdleTime", "ClaimInterval", "NackResendSleep", "BlockTime"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
}
