"""The CubeRuntime protocol Samantha acts through, and its HTTP client."""
