"""digitkit exporter: converts a trained model to TensorFlow Lite and proves it still works (`digit-export`)."""
