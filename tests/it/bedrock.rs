//! AWS Bedrock codecs (Converse, ConverseStream, InvokeModel, Mantle) against recordings and the simulator.
