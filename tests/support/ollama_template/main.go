// Command ollama_template renders a Modelfile TEMPLATE for a chat the way Ollama's server
// does: Go's text/template with missingkey=zero and Ollama's `json` function, over the values
// Ollama builds from an /api/chat request. The request's messages and tools are decoded into
// structs with Ollama's field names, JSON keys and field order, so that what Ollama drops or
// reorders is dropped and reordered here too.
//
// Input on stdin: {"template": "...", "messages": [...], "tools": [...]} with messages and tools
// as an Ollama client sends them. Output on stdout: the prompt text, nothing added.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"
)

type request struct {
	Template string        `json:"template"`
	Messages []chatMessage `json:"messages"`
	Tools    []tool        `json:"tools"`
}

type chatMessage struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Thinking   string     `json:"thinking"`
	ToolCalls  []toolCall `json:"tool_calls"`
	ToolName   string     `json:"tool_name"`
	ToolCallID string     `json:"tool_call_id"`
}

type toolCall struct {
	ID       string `json:"id"`
	Function struct {
		Index     int            `json:"index"`
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
	} `json:"function"`
}

// A tool as Ollama's template sees it: fixed field order; the top-level properties are a Go
// map (printed with sorted keys), nested ones keep the client's order.
type tool struct {
	Type     string       `json:"type"`
	Items    any          `json:"items,omitempty"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Parameters  toolParameters `json:"parameters"`
}

type toolParameters struct {
	Type       string              `json:"type"`
	Defs       any                 `json:"$defs,omitempty"`
	Items      any                 `json:"items,omitempty"`
	Required   []string            `json:"required,omitempty"`
	Properties map[string]property `json:"properties"`
}

type property struct {
	AnyOf       []property         `json:"anyOf,omitempty"`
	Type        propertyType       `json:"type,omitempty"`
	Items       any                `json:"items,omitempty"`
	Description string             `json:"description,omitempty"`
	Enum        []any              `json:"enum,omitempty"`
	Properties  *orderedProperties `json:"properties,omitempty"`
	Required    []string           `json:"required,omitempty"`
}

// propertyType is a JSON Schema type: one name or a list of names.
type propertyType []string

func (p *propertyType) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*p = propertyType{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*p = many
	return nil
}

func (p propertyType) MarshalJSON() ([]byte, error) {
	if len(p) == 1 {
		return json.Marshal(p[0])
	}
	return json.Marshal([]string(p))
}

// orderedProperties keeps nested properties in the order the client sent them.
type orderedProperties struct {
	names  []string
	values map[string]property
}

func (o *orderedProperties) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	o.values = make(map[string]property, len(raw))
	decoder := json.NewDecoder(bytes.NewReader(data))
	if _, err := decoder.Token(); err != nil { // the opening brace
		return err
	}
	for decoder.More() {
		key, err := decoder.Token()
		if err != nil {
			return err
		}
		name := key.(string)
		var value property
		if err := decoder.Decode(&value); err != nil {
			return err
		}
		if _, seen := o.values[name]; !seen {
			o.names = append(o.names, name)
		}
		o.values[name] = value
	}
	return nil
}

func (o orderedProperties) MarshalJSON() ([]byte, error) {
	var out bytes.Buffer
	out.WriteByte('{')
	for i, name := range o.names {
		if i > 0 {
			out.WriteByte(',')
		}
		key, _ := json.Marshal(name)
		value, err := json.Marshal(o.values[name])
		if err != nil {
			return nil, err
		}
		out.Write(key)
		out.WriteByte(':')
		out.Write(value)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// The message fields a template can name, as Ollama exposes them.
type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments map[string]any
}

// collate joins all system text and merges each message into the previous one when both
// have the same role, tool results excepted.
func collate(messages []chatMessage) (string, []*chatMessage) {
	var system []string
	var collated []*chatMessage
	for i := range messages {
		m := &messages[i]
		m.Role = strings.ToLower(m.Role)
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if n := len(collated); n > 0 && collated[n-1].Role == m.Role && m.Role != "tool" {
			collated[n-1].Content += "\n\n" + m.Content
			continue
		}
		collated = append(collated, m)
	}
	return strings.Join(system, "\n\n"), collated
}

func forTemplate(messages []*chatMessage) []*templateMessage {
	out := make([]*templateMessage, len(messages))
	for i, m := range messages {
		var calls []templateToolCall
		for _, c := range m.ToolCalls {
			calls = append(calls, templateToolCall{
				ID: c.ID,
				Function: templateToolCallFunction{
					Index: c.Function.Index, Name: c.Function.Name, Arguments: c.Function.Arguments,
				},
			})
		}
		out[i] = &templateMessage{
			Role: m.Role, Content: m.Content, Thinking: m.Thinking, ToolCalls: calls,
			ToolName: m.ToolName, ToolCallID: m.ToolCallID,
		}
	}
	return out
}

var functions = template.FuncMap{
	"json": func(v any) string {
		text, _ := json.Marshal(v)
		return string(text)
	},
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var req request
	if err := json.Unmarshal(input, &req); err != nil {
		fail(err)
	}
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(functions).Parse(req.Template)
	if err != nil {
		fail(err)
	}
	system, messages := collate(req.Messages)
	var tools []tool
	if req.Tools != nil {
		tools = req.Tools
	}
	values := map[string]any{
		"System":     system,
		"Messages":   forTemplate(messages),
		"Tools":      tools,
		"Response":   "",
		"Think":      false,
		"ThinkLevel": "",
		"IsThinkSet": false,
	}
	if err := tmpl.Execute(os.Stdout, values); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ollama_template:", err)
	os.Exit(2)
}
