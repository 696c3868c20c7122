package schema

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// pageView is "page.view": a page was shown. Its url must be an absolute
// http or https URL; the enrichment holds the URL's host (lower-cased, with
// the port if one was given) and its path, still escaped as sent ("/" when
// the URL has none), so that a %00 in a URL never becomes a NUL that
// Postgres jsonb would refuse.
func pageView() EventType {
	return EventType{
		Name: "page.view",
		Check: checkPayload(func(p object) Enrichment {
			raw := p.requiredString("url", webURL)
			p.optionalString("user_id")
			p.optionalString("referrer")
			if p.failed() {
				return nil
			}
			u, _ := url.Parse(raw) // webURL parsed it already
			path := u.EscapedPath()
			if path == "" {
				path = "/"
			}
			return Enrichment{
				"url_host": strings.ToLower(u.Host),
				"url_path": path,
			}
		}),
	}
}

// webURL accepts an absolute http or https URL with a host. The host's
// percent escapes must decode to UTF-8: https://%ff/ names no host, and its
// url_host would be a replacement character.
func webURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || !utf8.ValidString(u.Host) {
		return "must be an absolute http or https URL such as https://example.com/pricing"
	}
	return ""
}
