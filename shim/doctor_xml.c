/* doctor_xml.c — one attribute of one element of PMS's Preferences.xml. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "doctor.h"

/*
 * Preferences.xml is one element, <Preferences a="v" .../>, after an
 * optional <?xml ...?> declaration. This reads attributes the way an XML
 * parser would (either quote, blanks around '=', the five named entities
 * and numeric references) without a library for one line of XML; the
 * input is untrusted text (fuzzed).
 */

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
	    c == ':';
}

/* Appends the UTF-8 form of code point cp. */
static int
put_utf8(struct cpx_buf *b, unsigned long cp)
{
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -EPROTO;
	if (cp < 0x80) {
		cpx_buf_add_u8(b, (uint8_t)cp);
	} else if (cp < 0x800) {
		cpx_buf_add_u8(b, (uint8_t)(0xc0 | cp >> 6));
		cpx_buf_add_u8(b, (uint8_t)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		cpx_buf_add_u8(b, (uint8_t)(0xe0 | cp >> 12));
		cpx_buf_add_u8(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		cpx_buf_add_u8(b, (uint8_t)(0x80 | (cp & 0x3f)));
	} else {
		cpx_buf_add_u8(b, (uint8_t)(0xf0 | cp >> 18));
		cpx_buf_add_u8(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3f)));
		cpx_buf_add_u8(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3f)));
		cpx_buf_add_u8(b, (uint8_t)(0x80 | (cp & 0x3f)));
	}
	return 0;
}

/* One entity at p (after '&') up to ';'; returns its length or -EPROTO. */
static int
entity(const char *p, size_t n, struct cpx_buf *b)
{
	static const struct { const char *name; char c; } named[] = {
		{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
		{ "apos", '\'' },
	};
	const char *semi = memchr(p, ';', n < 12 ? n : 12);
	unsigned long cp;
	char *end;
	size_t i, k;

	if (semi == NULL)
		return -EPROTO;
	k = (size_t)(semi - p);
	for (i = 0; i < CPX_ARRAY_SIZE(named); i++) {
		if (strlen(named[i].name) == k && strncmp(p, named[i].name, k) == 0) {
			cpx_buf_add_u8(b, (uint8_t)named[i].c);
			return (int)k + 1;
		}
	}
	if (k < 2 || p[0] != '#')
		return -EPROTO;
	cp = p[1] == 'x' ? strtoul(p + 2, &end, 16) : strtoul(p + 1, &end, 10);
	if (end != semi || (p[1] == 'x' && k < 3) ||
	    put_utf8(b, cp) != 0)
		return -EPROTO;
	return (int)k + 1;
}

/* The quoted value at text[*i]; *i moves past its closing quote. */
static int
value(const char *t, size_t len, size_t *i, struct cpx_buf *b)
{
	char q = t[*i];
	int k;

	if (q != '"' && q != '\'')
		return -EPROTO;
	for ((*i)++; *i < len && t[*i] != q; (*i)++) {
		if (t[*i] == '<' || t[*i] == '\0')
			return -EPROTO;
		if (t[*i] != '&') {
			cpx_buf_add_u8(b, (uint8_t)t[*i]);
			continue;
		}
		if ((k = entity(t + *i + 1, len - *i - 1, b)) < 0)
			return k;
		*i += (size_t)k;
	}
	if (*i >= len)
		return -EPROTO;
	(*i)++;
	return 0;
}

/* Finds "<elem" followed by a blank, '/' or '>'; returns the index after it. */
static int
find_elem(const char *t, size_t len, const char *elem, size_t *at)
{
	size_t n = strlen(elem), i;

	for (i = 0; i + n + 1 < len; i++) {
		if (t[i] == '<' && strncmp(t + i + 1, elem, n) == 0 &&
		    (is_space(t[i + n + 1]) || t[i + n + 1] == '/' ||
		    t[i + n + 1] == '>')) {
			*at = i + n + 1;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * The value of attribute `attr` of the first <elem> in text: 0 and
 * *value (caller frees), -ENOENT when absent, -EPROTO when the element
 * is not well-formed up to its end.
 */
static int
scan(const char *t, size_t len, const char *elem, const char *attr,
    char **out)
{
	struct cpx_buf b;
	size_t i, start;
	int error = -ENOENT, match;

	*out = NULL;
	if (find_elem(t, len, elem, &i) != 0)
		return -ENOENT;
	for (;;) {
		while (i < len && is_space(t[i]))
			i++;
		if (i >= len)
			return -EPROTO;
		if (t[i] == '>' || (t[i] == '/' && i + 1 < len && t[i + 1] == '>'))
			return error;
		for (start = i; i < len && name_char(t[i]); i++)
			;
		if (i == start)
			return -EPROTO;
		match = i - start == strlen(attr) &&
		    strncmp(t + start, attr, i - start) == 0;
		while (i < len && is_space(t[i]))
			i++;
		if (i >= len || t[i] != '=')
			return -EPROTO;
		for (i++; i < len && is_space(t[i]); i++)
			;
		if (i >= len)
			return -EPROTO;
		cpx_buf_init(&b);
		if (value(t, len, &i, &b) != 0) {
			cpx_buf_free(&b);
			free(*out);
			*out = NULL;
			return -EPROTO;
		}
		if (match && *out == NULL) {
			*out = cpx_buf_cstr(&b);
			error = 0;
		} else {
			cpx_buf_free(&b);
		}
	}
}

int
shim_xml_attr(const char *t, size_t len, const char *elem, const char *attr,
    char **out)
{
	int error = scan(t, len, elem, attr, out);

	if (error != 0) {
		free(*out);	/* found before the element turned out malformed */
		*out = NULL;
	}
	return error;
}
