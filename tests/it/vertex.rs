//! Google Vertex AI codecs and Google auth against recordings and the simulator.
