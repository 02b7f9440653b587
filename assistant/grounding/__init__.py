"""Grounding checkers: does this evidence support this claim?"""
