"""The four reliability tasks (Inspect AI): TriviaQA, TruthfulQA, MASK Disinfo and conversational MedQA."""
