"""The blob format: bit packing (bits), the graph IR (graph), the layout writer and reader (pack),
and the input preprocessing a blob records (preprocess). numpy only; imports spec and errors."""
