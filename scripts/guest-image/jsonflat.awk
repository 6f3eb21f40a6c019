# Flatten a JSON document into "path<TAB>value" lines, one per scalar, so
# that the guest's /init can read meta_data.json with busybox alone (no jq,
# no python in a 2 MB initramfs). Object keys and array indexes are joined
# with ".": uuid, public_keys.mykey, keys.0.data, meta.role.
# A regular expression over the raw text is not enough: "name" is both a
# top-level key and a key inside "keys" and user-controlled "meta".
# String escapes \n \r \t become spaces (one value stays on one line);
# \uXXXX is decoded for ASCII and kept verbatim otherwise.
# Usage: awk -f jsonflat.awk FILE

{ doc = doc $0 "\n" }

END {
	n = length(doc); i = 1
	value("")
	ws()
	if (i <= n) fail("trailing data at offset " i)
}

function fail(msg) {
	print "jsonflat: " msg > "/dev/stderr"
	exit 1
}

function ws() {
	while (i <= n && index(" \t\r\n", substr(doc, i, 1))) i++
}

function hexval(h,   k, v, c) {
	v = 0
	for (k = 1; k <= length(h); k++) {
		c = index("0123456789abcdef", tolower(substr(h, k, 1)))
		if (c == 0) return -1
		v = v * 16 + c - 1
	}
	return v
}

# At an opening quote: return the decoded string, leave i after the close.
function str(   out, c, v, h) {
	i++; out = ""
	while (i <= n) {
		c = substr(doc, i, 1)
		if (c == "\"") { i++; return out }
		if (c != "\\") { out = out c; i++; continue }
		c = substr(doc, i + 1, 1); i += 2
		if (c == "n" || c == "r" || c == "t") out = out " "
		else if (c == "b" || c == "f") out = out
		else if (c == "u") {
			h = substr(doc, i, 4); i += 4
			v = hexval(h)
			if (v >= 32 && v < 127) out = out sprintf("%c", v)
			else out = out "\\u" h
		}
		else out = out c
	}
	fail("unterminated string")
}

function emit(path, v) {
	printf "%s\t%s\n", path, v
}

function value(path,   c, k, idx, s) {
	ws()
	c = substr(doc, i, 1)
	if (c == "{") {
		i++; ws()
		if (substr(doc, i, 1) == "}") { i++; return }
		while (1) {
			ws()
			if (substr(doc, i, 1) != "\"") fail("key expected at offset " i)
			k = str(); ws()
			if (substr(doc, i, 1) != ":") fail("':' expected at offset " i)
			i++
			value((path == "") ? k : (path "." k))
			ws(); c = substr(doc, i, 1); i++
			if (c == "}") return
			if (c != ",") fail("',' or '}' expected at offset " (i - 1))
		}
	}
	if (c == "[") {
		i++; ws(); idx = 0
		if (substr(doc, i, 1) == "]") { i++; return }
		while (1) {
			value((path == "") ? idx : (path "." idx))
			idx++
			ws(); c = substr(doc, i, 1); i++
			if (c == "]") return
			if (c != ",") fail("',' or ']' expected at offset " (i - 1))
		}
	}
	if (c == "\"") { s = str(); emit(path, s); return }
	if (match(substr(doc, i), /^[-+0-9.eE]+|^true|^false|^null/)) {
		emit(path, substr(doc, i, RLENGTH)); i += RLENGTH; return
	}
	fail("unexpected '" c "' at offset " i)
}
