module loragate.test/ollama_template

go 1.22
