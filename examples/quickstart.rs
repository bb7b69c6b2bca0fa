fn main() { polyrelay::sim(); }
