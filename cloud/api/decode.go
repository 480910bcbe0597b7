package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxDocumentBytes is the largest single document DecodeManifests accepts, and the
// largest body DecodeObject accepts. An object that big is far past what any pod or
// deployment needs; the limit keeps a runaway file from being held in memory whole.
const MaxDocumentBytes = 3 << 20

// maxWarningsPerDocument bounds the unknown-field warnings of one document.
const maxWarningsPerDocument = 20

// DecodeError says which document of a manifest stream failed to decode, and why:
// "document 2 (Pod web): spec.containers: expected a list". Err is a *FieldError or
// FieldErrors when a field is at fault, so errors.Is(err, ErrInvalid) holds for those.
type DecodeError struct {
	Doc  int    // 1-based position among the stream's non-empty documents
	Item int    // 1-based position in the document's List, or 0
	Kind string // as the document says, when it says
	Name string // metadata.name, when the document has one
	Err  error
}

// Error says where and what: "document 1, item 3 (Pod web): spec.containers: expected a list".
func (e *DecodeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "document %d", e.Doc)
	if e.Item > 0 {
		fmt.Fprintf(&b, ", item %d", e.Item)
	}
	if e.Kind != "" {
		b.WriteString(" (" + e.Kind)
		if e.Name != "" {
			b.WriteString(" " + e.Name)
		}
		b.WriteString(")")
	}
	return b.String() + ": " + e.Err.Error()
}

// Unwrap gives the cause, so errors.Is(err, ErrInvalid) and errors.As(err, &fieldErr) see it.
func (e *DecodeError) Unwrap() error { return e.Err }

// DecodeManifests reads every object of a stream of manifests, as `cloudbox apply -f`
// takes them: YAML documents separated by "---" lines, or JSON (one object, or several
// one after the other). A document of kind List (or PodList, ...) stands for its items.
// Empty and comment-only documents are skipped. Older apiVersions that cloudbox serves
// under a newer name (apps/v1beta1) are accepted, and the objects come back with the
// canonical apiVersion and kind. Fields that cloudbox does not model are ignored; see
// DecodeManifestsWithWarnings to hear about them. Errors are *DecodeError, and say
// which document failed, and on which line for a syntax error.
func DecodeManifests(r io.Reader) ([]Object, error) {
	objs, _, err := DecodeManifestsWithWarnings(r)
	return objs, err
}

// DecodeManifestsWithWarnings is DecodeManifests that also returns the warnings of
// Decoder.Manifests.
func DecodeManifestsWithWarnings(r io.Reader) ([]Object, []string, error) {
	return Decoder{}.Manifests(r)
}

// DecodeObject decodes the JSON or YAML body of a request to the API server for kind
// k: one object, whose apiVersion and kind may be left out but must agree with k when
// given. Unknown fields are ignored. The error is a *FieldError or FieldErrors (both
// ErrInvalid) when a field has the wrong type, and a plain error for a body that is not
// one well-formed object of kind k.
func DecodeObject(k *KindInfo, data []byte) (Object, error) {
	obj, _, err := DecodeObjectWithWarnings(k, data)
	return obj, err
}

// DecodeObjectWithWarnings is DecodeObject that also returns warnings, as
// Decoder.Object does, for the API server to pass on to its client.
func DecodeObjectWithWarnings(k *KindInfo, data []byte) (Object, []string, error) {
	return Decoder{}.Object(k, data)
}

// Decoder decodes manifests and request bodies. The zero value warns about fields it
// drops and reads a body without an apiVersion as its kind's.
type Decoder struct {
	// FieldValidation says what becomes of fields no cloudbox type has, keys matched
	// only regardless of case, and duplicate keys. If empty, FieldValidationWarn.
	FieldValidation FieldValidation
	// APIVersion is what Object reads a body that names no apiVersion as: the group
	// version of the request's path ("apps/v1beta2"), so that a body sent to a
	// legacy path gets that version's defaults. If empty, the kind's own.
	APIVersion string
}

// Manifests decodes a stream as DecodeManifests does, and returns a warning for each
// field it dropped (with the nearest known field), for each key matched only
// regardless of case, for each retired apiVersion it read as the current one, and for
// each legacy default it filled; each names the object as its document does:
// `apps/v1beta2 Deployment web: spec.template.spec.containers[0].port: unknown field
// (did you mean "ports"?)`.
func (dc Decoder) Manifests(r io.Reader) ([]Object, []string, error) {
	d := &manifestDecoder{validation: dc.FieldValidation}
	if err := d.run(r, maxReadBuffer); err != nil {
		return nil, d.warnings, err
	}
	return d.objs, d.warnings, nil
}

// Object decodes a request body as DecodeObject does, with the warnings of Manifests.
func (dc Decoder) Object(k *KindInfo, data []byte) (Object, []string, error) {
	if k == nil {
		return nil, nil, errors.New("decode: no kind given")
	}
	if len(data) > MaxDocumentBytes {
		return nil, nil, fmt.Errorf("the object is %d bytes, more than the limit of %d", len(data), MaxDocumentBytes)
	}
	d := &manifestDecoder{expect: k, validation: dc.FieldValidation, apiVersion: dc.APIVersion}
	// A body is in memory already: a reader no larger than it reads the same, and
	// the API server decodes one per write.
	if err := d.run(bytes.NewReader(data), min(len(data), maxReadBuffer)); err != nil {
		return nil, d.warnings, err
	}
	switch len(d.objs) {
	case 0:
		return nil, d.warnings, fmt.Errorf("the body holds no object; expected a %s", k.Kind)
	case 1:
		return d.objs[0], d.warnings, nil
	}
	return nil, d.warnings, fmt.Errorf("the body holds %d objects; expected one %s", len(d.objs), k.Kind)
}

// manifestDecoder turns documents into objects. With expect set it decodes a request
// body: errors are not wrapped in DecodeError and Lists are refused.
type manifestDecoder struct {
	expect     *KindInfo
	apiVersion string // what a body without one is read as, with expect; "" for expect's
	validation FieldValidation
	docs       int // non-empty documents seen
	objs       []Object
	warnings   []string
}

// errNotJSON sends a stream that starts with '{' or '[' but whose first value is not
// JSON to the YAML reader, or, when the value is meant as JSON, to a JSON error.
var errNotJSON = errors.New("not JSON")

// maxReadBuffer is the read buffer of a manifest stream.
const maxReadBuffer = 64 << 10

// run decodes r through a read buffer of size bytes (bufio's least, 16, if smaller).
func (d *manifestDecoder) run(r io.Reader, size int) error {
	br := bufio.NewReaderSize(r, size)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
	if c := firstNonSpace(br); c == '{' || c == '[' {
		consumed, err := d.jsonStream(br)
		if !errors.Is(err, errNotJSON) {
			return err
		}
		if looksLikeJSON(consumed) {
			// Meant as JSON, so held to JSON (YAML would let a trailing comma pass), and
			// the JSON error is the one its author understands.
			_, jerr := decodeJSONValue(consumed)
			if jerr == nil {
				jerr = io.ErrUnexpectedEOF
			}
			return d.wrap(1, 0, "", "", jsonSyntaxError(consumed, jerr))
		}
		return d.yamlStream(bufio.NewReader(io.MultiReader(bytes.NewReader(consumed), br)))
	}
	return d.yamlStream(br)
}

// looksLikeJSON tells JSON that went wrong from a YAML flow mapping: JSON quotes its
// keys.
func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(bytes.TrimSpace(b), "[{ \t\r\n")
	return len(b) > 0 && b[0] == '"'
}

// jsonSyntaxError puts the line of a JSON syntax error in the message; js is the text
// from the start of the stream.
func jsonSyntaxError(js []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(js[:min(max(int(se.Offset), 0), len(js))], []byte("\n"))
		return fmt.Errorf("line %d: %w", line, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("line %d: the JSON value is not complete", 1+bytes.Count(js, []byte("\n")))
	}
	return err
}

// firstNonSpace peeks at the first byte that is not white space, or returns 0.
func firstNonSpace(br *bufio.Reader) byte {
	for n := 1; n <= br.Size(); n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			return 0
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
		if err != nil {
			return 0
		}
	}
	return 0
}

// yamlStream splits the stream at "---" lines and decodes each document, keeping
// track of lines so that errors point into the file rather than into the document.
func (d *manifestDecoder) yamlStream(br *bufio.Reader) error {
	var doc bytes.Buffer
	docLine, line := 1, 0
	for {
		text, err := readLine(br, &doc, MaxDocumentBytes-doc.Len())
		if errors.Is(err, errTooLarge) {
			return d.wrap(d.docs+1, 0, "", "", fmt.Errorf("the document starting at line %d is larger than %d bytes", docLine, MaxDocumentBytes))
		}
		if text != nil {
			line++
			if isDocumentSeparator(text) && line > 1 {
				// The separator line starts the next document, so the YAML parser sees
				// any content after "---" and line numbers stay right.
				prev := doc.Bytes()[:doc.Len()-len(text)]
				if derr := d.yamlDocument(prev, docLine); derr != nil {
					return derr
				}
				rest := bytes.Clone(text)
				doc.Reset()
				doc.Write(rest)
				docLine = line
			}
		}
		if err == io.EOF {
			return d.yamlDocument(doc.Bytes(), docLine)
		}
		if err != nil {
			return err
		}
	}
}

var errTooLarge = errors.New("document too large")

// readLine appends the next line (with its newline) to buf and returns it, refusing to
// grow buf by more than limit bytes. At the end of input it returns io.EOF with the
// last, unterminated line, or nil.
func readLine(br *bufio.Reader, buf *bytes.Buffer, limit int) ([]byte, error) {
	start := buf.Len()
	for {
		chunk, err := br.ReadSlice('\n')
		if buf.Len()-start+len(chunk) > limit {
			return nil, errTooLarge
		}
		buf.Write(chunk)
		switch {
		case err == nil:
			return buf.Bytes()[start:], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if buf.Len() == start {
				return nil, io.EOF
			}
			return buf.Bytes()[start:], io.EOF
		default:
			return nil, err
		}
	}
}

// isDocumentSeparator reports whether line starts a YAML document: "---" alone or
// followed by white space.
func isDocumentSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n'
}

var yamlLineRe = regexp.MustCompile(`\bline (\d+)\b`)

// yamlDocument decodes one YAML document that starts on line firstLine of the stream.
func (d *manifestDecoder) yamlDocument(doc []byte, firstLine int) error {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil
	}
	// The parser numbers lines from the start of the document; the user counts from
	// the start of the file.
	fileLines := func(msg string) string {
		return yamlLineRe.ReplaceAllStringFunc(msg, func(m string) string {
			n, _ := strconv.Atoi(m[len("line "):])
			return "line " + strconv.Itoa(n+firstLine-1)
		})
	}
	js, dup, err := yamlToJSON(doc)
	if err != nil {
		msg := fileLines(err.Error())
		if !yamlLineRe.MatchString(msg) {
			msg += fmt.Sprintf(" (in the document starting at line %d)", firstLine)
		}
		return d.wrap(d.docs+1, 0, "", "", errors.New(msg))
	}
	if dup != nil {
		// Kubernetes keeps the last of duplicate keys, and so does cloudbox; it is
		// most likely a mistake, so say so.
		msg := strings.TrimPrefix(dup.Error(), "yaml: unmarshal errors:")
		msg = strings.Join(strings.Fields(strings.ReplaceAll(fileLines(msg), "\n", "; ")), " ")
		msg = strings.TrimPrefix(msg, "; ")
		switch d.validation {
		case FieldValidationStrict:
			return d.wrap(d.docs+1, 0, "", "", errors.New(msg+" (strict field validation refuses duplicate keys)"))
		case FieldValidationIgnore:
		default:
			d.warnings = append(d.warnings, fmt.Sprintf("document %d: %s (the last one is used)", d.docs+1, msg))
		}
	}
	return d.document(js, 0)
}

// yamlToJSON converts a YAML document to JSON. dup reports duplicate keys, which the
// conversion tolerates.
func yamlToJSON(doc []byte) (js []byte, dup, err error) {
	defer func() {
		// The YAML parser is third-party code fed with user input: a panic in it must
		// not take the API server or the CLI down.
		if r := recover(); r != nil {
			js, dup, err = nil, nil, fmt.Errorf("yaml: cannot parse the document: %v", r)
		}
	}()
	js, err = yaml.YAMLToJSONStrict(doc)
	if err == nil {
		return js, nil, nil
	}
	js, err2 := yaml.YAMLToJSON(doc)
	if err2 != nil {
		return nil, nil, err2
	}
	return js, err, nil
}

// jsonStream decodes a stream of JSON values. When the first value is not JSON it
// returns errNotJSON and the bytes it consumed, for the YAML reader to start over.
func (d *manifestDecoder) jsonStream(br *bufio.Reader) ([]byte, error) {
	var consumed bytes.Buffer
	line := 1
	first := true
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if first {
			consumed.WriteByte(c)
		}
		switch c {
		case '\n':
			line++
			continue
		case ' ', '\t', '\r':
			continue
		case '{', '[':
		default:
			if first {
				return consumed.Bytes(), errNotJSON
			}
			return nil, d.wrap(d.docs+1, 0, "", "", fmt.Errorf("line %d: expected a JSON object, found %q", line, c))
		}
		value, lines, err := scanJSONValue(br, c)
		if first {
			consumed.Write(value[1:])
		}
		if errors.Is(err, errTooLarge) {
			return nil, d.wrap(d.docs+1, 0, "", "", fmt.Errorf("the JSON value starting at line %d is larger than %d bytes", line, MaxDocumentBytes))
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		if first && (err != nil || !json.Valid(value)) {
			return consumed.Bytes(), errNotJSON
		}
		if err != nil {
			return nil, d.wrap(d.docs+1, 0, "", "", fmt.Errorf("line %d: the JSON value starting there is not complete", line))
		}
		first = false
		if derr := d.document(value, line); derr != nil {
			return nil, derr
		}
		line += lines
	}
}

// scanJSONValue reads the rest of a JSON object or array that starts with open (already
// read), by counting brackets outside strings, and returns it whole with the number
// of newlines in it. Whether it is valid JSON is for json.Unmarshal to say.
func scanJSONValue(br *bufio.Reader, open byte) ([]byte, int, error) {
	value := []byte{open}
	depth, lines := 1, 0
	inString, escaped := false, false
	for depth > 0 {
		c, err := br.ReadByte()
		if err == io.EOF {
			return value, lines, io.ErrUnexpectedEOF
		}
		if err != nil {
			return value, lines, err
		}
		if len(value) >= MaxDocumentBytes {
			return value, lines, errTooLarge
		}
		value = append(value, c)
		switch {
		case c == '\n':
			lines++
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return value, lines, nil
}

// document decodes one document, given as JSON. line is where a JSON document starts
// in the stream, for syntax errors; 0 for documents converted from YAML.
func (d *manifestDecoder) document(js []byte, line int) error {
	v, err := decodeJSONValue(js)
	if err != nil {
		var se *json.SyntaxError
		if line > 0 && errors.As(err, &se) {
			n := line + bytes.Count(js[:min(max(int(se.Offset), 0), len(js))], []byte("\n"))
			err = fmt.Errorf("line %d: %w", n, err)
		}
		return d.wrap(d.docs+1, 0, "", "", err)
	}
	if v == nil {
		return nil // an empty or comment-only document
	}
	d.docs++
	switch v := v.(type) {
	case map[string]any:
		if itemKind, ok := listKind(v); ok {
			if d.expect != nil {
				return fmt.Errorf("expected one %s, found a %v", d.expect.Kind, v["kind"])
			}
			items, ok := v["items"].([]any)
			if !ok && v["items"] != nil {
				return d.wrap(d.docs, 0, fmt.Sprint(v["kind"]), "", &FieldError{Field: "items", Reason: "expected a list"})
			}
			return d.items(items, itemKind)
		}
		return d.object(v, 0, nil)
	case []any:
		if d.expect != nil {
			return fmt.Errorf("expected one %s, found a list", d.expect.Kind)
		}
		return d.items(v, nil)
	default:
		return d.wrap(d.docs, 0, "", "", fmt.Errorf("expected an object with apiVersion and kind, found %s", jsonTypeName(v)))
	}
}

// listKind recognizes kind List, and PodList and the like (what the API's list calls
// answer), whose items may leave their kind out; the second result says whether m is
// a list, the first gives the kind of its items when known.
func listKind(m map[string]any) (*KindInfo, bool) {
	kind, _ := m["kind"].(string)
	if kind == "List" {
		return nil, true
	}
	if base, ok := strings.CutSuffix(kind, "List"); ok && base != "" {
		if _, hasItems := m["items"]; hasItems {
			for _, k := range kinds {
				if k.Kind == base {
					return k, true
				}
			}
		}
	}
	return nil, false
}

func (d *manifestDecoder) items(items []any, itemKind *KindInfo) error {
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return d.wrap(d.docs, i+1, "", "", fmt.Errorf("expected an object with apiVersion and kind, found %s", jsonTypeName(it)))
		}
		if _, nested := listKind(m); nested {
			return d.wrap(d.docs, i+1, fmt.Sprint(m["kind"]), "", errors.New("a List may not hold another List"))
		}
		if err := d.object(m, i+1, itemKind); err != nil {
			return err
		}
	}
	return nil
}

// object decodes one object. item is its position in a List (or 0); def is the kind
// of items that leave theirs out.
func (d *manifestDecoder) object(m map[string]any, item int, def *KindInfo) error {
	name := ""
	if meta, ok := m["metadata"].(map[string]any); ok {
		name, _ = meta["name"].(string)
	}
	apiVersion, okV := stringField(m, "apiVersion")
	kind, okK := stringField(m, "kind")
	fail := func(err error) error { return d.wrap(d.docs, item, kind, name, err) }
	if !okV {
		return fail(&FieldError{Field: "apiVersion", Reason: "expected a string"})
	}
	if !okK {
		return fail(&FieldError{Field: "kind", Reason: "expected a string"})
	}
	if def == nil {
		def = d.expect
	}
	if def != nil {
		if kind == "" {
			kind = def.Kind
		}
		if apiVersion == "" && kind == def.Kind {
			apiVersion = def.APIVersion()
			if def == d.expect && d.apiVersion != "" {
				apiVersion = d.apiVersion
			}
		}
	}
	if e := d.expect; e != nil {
		if kind != e.Kind {
			return fmt.Errorf("the body is a %s, but %s hold kind %s", kind, e.Resource, e.Kind)
		}
		if canonicalAPIVersion(apiVersion) != e.APIVersion() {
			return fmt.Errorf("the body has apiVersion %s, but %s are served as %s", apiVersion, e.Resource, e.APIVersion())
		}
	}
	k, err := KindFor(apiVersion, kind)
	if err != nil {
		return fail(err)
	}
	obj := k.New()
	c := &schemaChecker{}
	c.check("", m, reflect.TypeOf(obj))
	if len(c.errs) > 0 {
		return fail(oneOrAll(c.errs))
	}
	if d.validation == FieldValidationStrict && len(c.issues) > 0 {
		return fail(oneOrAll(strictErrors(c.issues)))
	}

	js, err := json.Marshal(m)
	if err == nil {
		err = json.Unmarshal(js, obj)
	}
	if err != nil {
		// The checker accepts what encoding/json does; reaching here is a bug in it.
		return fail(fmt.Errorf("decoding: %w", err))
	}
	*obj.GetTypeMeta() = TypeMeta{APIVersion: k.APIVersion(), Kind: k.Kind}

	var warnings []string
	if apiVersion != k.APIVersion() {
		warnings = append(warnings, fmt.Sprintf("apiVersion %s is read as %s", apiVersion, k.APIVersion()))
	}
	if note := defaultLegacySelector(apiVersion, obj); note != "" {
		warnings = append(warnings, note)
	}
	if d.validation != FieldValidationIgnore {
		for _, fi := range c.issues {
			warnings = append(warnings, fi.warning())
		}
	}
	if len(warnings) > maxWarningsPerDocument {
		n := len(warnings) - maxWarningsPerDocument
		warnings = append(warnings[:maxWarningsPerDocument], fmt.Sprintf("... and %d more", n))
	}
	// A warning names the object as its document does, since that is what its
	// author will look for.
	who := apiVersion + " " + kind
	if n := obj.GetObjectMeta().Name; n != "" {
		who += " " + n
	}
	for _, w := range warnings {
		d.warnings = append(d.warnings, who+": "+w)
	}
	d.objs = append(d.objs, obj)
	return nil
}

// oneOrAll returns the only error of errs as itself, so that errors.As finds the
// *FieldError, and several as they are.
func oneOrAll(errs FieldErrors) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errs
}

// stringField returns m[name] when it is a string or absent; ok is false for any
// other type.
func stringField(m map[string]any, name string) (string, bool) {
	switch v := m[name].(type) {
	case nil:
		return "", true
	case string:
		return v, true
	}
	return "", false
}

// wrap puts the document's position on err, except for a request body, where there is
// only one document.
func (d *manifestDecoder) wrap(doc, item int, kind, name string, err error) error {
	if d.expect != nil {
		return err
	}
	return &DecodeError{Doc: doc, Item: item, Kind: kind, Name: name, Err: err}
}

// decodeJSONValue decodes exactly one JSON value, keeping numbers as json.Number so
// that integers are checked without going through float64.
func decodeJSONValue(js []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
