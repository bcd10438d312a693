package sast

// syntax names, for one grammar, the node kinds the taint analysis treats
// specially. Every other kind carries taint from any named child.
type syntax struct {
	// functions open a new scope: their body is analysed with a copy of
	// the enclosing variables, their parameters may be sources.
	functions map[string]bool
	// assignments bind the value of the right field to the left one.
	assignments map[string]assignment
	// calls are call expressions: callee and arguments fields.
	calls map[string]call
	// members read a part of an object field: a tainted object taints it.
	members map[string]string
	// concats are binary operators; concatOps lists the operators that
	// carry taint (others, comparisons say, give a clean value).
	concats   map[string]bool
	concatOps map[string]string // operator -> trace step ("concat", "format")
	// templates interpolate expressions into a string.
	templates map[string]bool
	// clean kinds never carry taint (comparisons, negation, literals).
	clean map[string]bool
	// conditionals carry the taint of their branches, not their test.
	conditionals map[string][2]string
	// identifiers name variables.
	identifiers map[string]bool
	// cleanCalls are callees (as written) whose result is never tainted:
	// numeric conversions and lengths, safe in every injection family.
	cleanCalls map[string]bool
	// cleanMembers are properties whose value is never tainted (length).
	cleanMembers map[string]bool
	// branches run their body conditionally: a clean value assigned
	// inside one does not clean the variable (if (!name) name = "x").
	branches map[string]bool
	// passCalls are callees (as written) that hand their input on,
	// decoded or trimmed: taint through them keeps its confidence.
	passCalls map[string]bool
}

// decoders fill their &x arguments from their receiver or input (Go).
var decoders = map[string]bool{
	"Decode": true, "Unmarshal": true, "Bind": true, "BindJSON": true, "BindQuery": true, "BindUri": true,
	"ShouldBind": true, "ShouldBindJSON": true, "ShouldBindQuery": true, "ShouldBindUri": true,
	"ShouldBindWith": true, "BodyParser": true, "QueryParser": true, "ParamsParser": true,
}

// mutators are methods that store their arguments in their object:
// parts.push(x), params.append(x), b.WriteString(x) taint parts, params, b.
var mutators = map[string]bool{
	"push": true, "unshift": true, "append": true, "appendleft": true, "add": true, "extend": true,
	"insert": true, "update": true, "set": true, "setdefault": true, "splice": true,
	"WriteString": true, "Write": true, "WriteByte": true, "WriteRune": true, "Add": true, "Set": true,
}

type assignment struct {
	left, right string
	augmented   bool // x += y keeps x's taint
}

type call struct {
	callee, args string
}

// formatFuncs are functions and methods that build a string from their
// arguments: taint through them is a "format" step, at full confidence.
var formatFuncs = map[string]bool{
	"format": true, "Sprintf": true, "Sprint": true, "Sprintln": true, "Errorf": true,
	"join": true, "Join": true, "concat": true, "Concat": true, "str": true, "String": true,
	"format_map": true, "append": true,
}

var jsSyntax = &syntax{
	functions: set("function_declaration", "function_expression", "arrow_function", "method_definition",
		"generator_function", "generator_function_declaration", "function"),
	assignments: map[string]assignment{
		"variable_declarator":             {left: "name", right: "value"},
		"assignment_expression":           {left: "left", right: "right"},
		"augmented_assignment_expression": {left: "left", right: "right", augmented: true},
		"for_in_statement":                {left: "left", right: "right"},
	},
	calls: map[string]call{
		"call_expression": {callee: "function", args: "arguments"},
		"new_expression":  {callee: "constructor", args: "arguments"},
	},
	members: map[string]string{
		"member_expression": "object", "subscript_expression": "object",
	},
	concats:      set("binary_expression"),
	concatOps:    map[string]string{"+": "concat", "||": "", "??": ""},
	templates:    set("template_string"),
	clean:        set("unary_expression", "update_expression", "number", "true", "false", "null", "undefined", "regex", "comment"),
	conditionals: map[string][2]string{"ternary_expression": {"consequence", "alternative"}},
	identifiers:  set("identifier", "shorthand_property_identifier", "shorthand_property_identifier_pattern"),
	cleanCalls: set("parseInt", "parseFloat", "Number", "Boolean", "isNaN", "Number.parseInt", "Number.parseFloat",
		"Math.floor", "Math.ceil", "Math.round", "Math.abs", "Math.min", "Math.max", "Math.trunc"),
	cleanMembers: set("length"),
	branches: set("if_statement", "else_clause", "for_statement", "for_in_statement", "while_statement", "do_statement",
		"switch_statement", "switch_case", "try_statement", "catch_clause", "ternary_expression"),
	passCalls: set("decodeURIComponent", "decodeURI", "unescape", "JSON.parse", "JSON.stringify", "String",
		"Buffer.from", "atob", "querystring.parse", "qs.parse"),
}

var pySyntax = &syntax{
	functions: set("function_definition", "lambda"),
	assignments: map[string]assignment{
		"assignment":           {left: "left", right: "right"},
		"augmented_assignment": {left: "left", right: "right", augmented: true},
		"named_expression":     {left: "name", right: "value"},
		"for_statement":        {left: "left", right: "right"},
		"for_in_clause":        {left: "left", right: "right"},
	},
	calls:        map[string]call{"call": {callee: "function", args: "arguments"}},
	members:      map[string]string{"attribute": "object", "subscript": "value"},
	concats:      set("binary_operator"),
	concatOps:    map[string]string{"+": "concat", "%": "format"},
	templates:    set("string"),
	clean:        set("comparison_operator", "not_operator", "unary_operator", "integer", "float", "true", "false", "none", "comment"),
	conditionals: map[string][2]string{},
	identifiers:  set("identifier"),
	cleanCalls:   set("int", "float", "bool", "len", "abs", "round", "hash"),
	cleanMembers: set(),
	branches: set("if_statement", "elif_clause", "else_clause", "for_statement", "while_statement", "try_statement",
		"except_clause", "match_statement", "case_clause", "conditional_expression"),
	passCalls: set("str", "json.loads", "unquote", "unquote_plus", "urllib.parse.unquote", "parse.unquote",
		"urllib.parse.unquote_plus", "base64.b64decode", "base64.urlsafe_b64decode", "bytes.decode",
		// containers and parsers that hand their input on
		"dict", "list", "tuple", "set", "sorted", "bytes", "parse_qs", "parse_qsl", "urllib.parse.parse_qs",
		"urllib.parse.parse_qsl", "urlparse", "urllib.parse.urlparse", "re.sub",
		// paths built from the input are the input (a traversal survives them)
		"os.path.join", "os.path.abspath", "os.path.normpath"),
}

var goSyntax = &syntax{
	functions: set("function_declaration", "method_declaration", "func_literal"),
	assignments: map[string]assignment{
		"short_var_declaration": {left: "left", right: "right"},
		"assignment_statement":  {left: "left", right: "right"},
		"var_spec":              {left: "name", right: "value"},
		"const_spec":            {left: "name", right: "value"},
		"range_clause":          {left: "left", right: "right"},
	},
	calls:     map[string]call{"call_expression": {callee: "function", args: "arguments"}},
	members:   map[string]string{"selector_expression": "operand", "index_expression": "operand", "slice_expression": "operand"},
	concats:   set("binary_expression"),
	concatOps: map[string]string{"+": "concat"},
	templates: set(),
	clean: set("int_literal", "float_literal", "imaginary_literal", "rune_literal", "true", "false", "nil", "iota",
		"comment", "func_literal"),
	conditionals: map[string][2]string{},
	identifiers:  set("identifier"),
	cleanCalls: set("len", "cap", "strconv.Atoi", "strconv.ParseInt", "strconv.ParseUint", "strconv.ParseFloat",
		"strconv.ParseBool", "strconv.Itoa", "strconv.FormatInt", "strconv.FormatUint", "strconv.FormatFloat", "strconv.FormatBool"),
	cleanMembers: set(),
	branches: set("if_statement", "for_statement", "expression_switch_statement", "type_switch_statement",
		"select_statement", "expression_case", "type_case", "communication_case", "default_case"),
	passCalls: set("io.ReadAll", "ioutil.ReadAll", "json.NewDecoder", "string", "[]byte", "url.QueryUnescape",
		"url.PathUnescape", "strings.TrimSpace", "strings.ToLower", "strings.ToUpper", "strings.Trim",
		"strings.TrimPrefix", "strings.TrimSuffix", "strings.ReplaceAll", "strings.Replace", "strings.Split",
		"strings.Fields", "path.Clean", "filepath.Clean", "base64.StdEncoding.DecodeString", "base64.URLEncoding.DecodeString"),
}

var syntaxes = map[string]*syntax{
	"javascript": jsSyntax, "typescript": jsSyntax, "tsx": jsSyntax, "python": pySyntax, "go": goSyntax,
}

func set(kinds ...string) map[string]bool {
	m := make(map[string]bool, len(kinds))
	for _, k := range kinds {
		m[k] = true
	}
	return m
}
