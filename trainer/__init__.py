"""digitkit trainer: trains and evaluates the digit CNN on MNIST (`digit-train`)."""
