package schema

import (
	"net/mail"
	"strings"
)

// userSignup is "user.signup": a new account. Its email must be a bare
// address (ada@example.com, not "Ada <ada@example.com>"); the enrichment
// holds it lower-cased and trimmed, and its domain.
func userSignup() EventType {
	return EventType{
		Name: "user.signup",
		Check: checkPayload(func(p object) Enrichment {
			p.requiredString("user_id")
			email := p.requiredString("email", bareEmail)
			p.optionalString("plan")
			if p.failed() {
				return nil
			}
			normalized := strings.ToLower(strings.TrimSpace(email))
			return Enrichment{
				"email_normalized": normalized,
				"email_domain":     normalized[strings.LastIndexByte(normalized, '@')+1:],
			}
		}),
	}
}

// bareEmail accepts an RFC 5322 address with no display name, comment or
// angle brackets; surrounding spaces are allowed.
func bareEmail(s string) string {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(s) {
		return "must be an email address such as ada@example.com"
	}
	return ""
}
