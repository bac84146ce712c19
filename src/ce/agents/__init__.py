"""Executors: each turns one PRP into checkpoint commits on its branch, behind one interface."""
